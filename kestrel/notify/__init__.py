"""Telegram notifications (the event outbox, delivered exactly once where the Bot API allows)
and the command bot. Never imports prefect: tasks/notify.py and flows/ wrap it."""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = [
    "bot",
    "client",
    "commands",
    "errors",
    "outbox",
    "redact",
    "render",
    "report",
    "settings",
    "templates",
]
