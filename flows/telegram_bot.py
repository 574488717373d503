"""The command bot as a deployment: one bounded long-polling run per flow run.

Schedule it back to back (e.g. every hour with stop_after_s=3540) with a concurrency limit
of 1: Telegram allows one getUpdates consumer per bot, and a second poller gets 409 Conflict.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from kestrel.mode import trading_mode
from kestrel.notify.bot import BotRunReport
from kestrel.operator.run import settings_for_run
from tasks.notify import poll_commands_task, telegram_settings


@flow(name="telegram-bot", log_prints=True)
def telegram_bot(
    config: dict[str, Any] | None = None,
    telegram: dict[str, Any] | None = None,
    stop_after_s: float = 3540.0,
) -> BotRunReport:
    settings = settings_for_run(config, run="telegram-bot")
    with trading_mode(settings.mode):
        return poll_commands_task(settings, telegram_settings(settings, telegram), stop_after_s)
