"""Telegram notifications (the event outbox, delivered exactly once where the Bot API allows)
and the command bot. Never imports prefect: tasks/notify.py and flows/ wrap it."""
