"""Custom Prefect block types (exchange account, Telegram bot, store, trading config)."""
