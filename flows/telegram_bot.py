"""The command bot as a deployment: one bounded long-polling run per flow run; the same flow
`kestrel telegram`'s deployment runs.

Schedule it back to back (e.g. every hour with stop_after_s=3540) with a concurrency limit
of 1: Telegram allows one getUpdates consumer per bot, and a second poller gets 409 Conflict.
Without a bot token a run completes doing nothing, and says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.client.schemas.objects import State
from pydantic import Field

from blocks.settings import BlockRefs
from flows._entry import entry_run, settle
from flows.notifications import not_configured, telegram_missing
from flows.params import SettingsOverrides, TelegramOverrides
from kestrel.notify.bot import BotRunReport
from tasks.notify import poll_commands_task, telegram_settings

BOT_FLOW = "kestrel-telegram-bot"


@flow(name=BOT_FLOW, log_prints=True)
def telegram_bot(
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
    telegram: TelegramOverrides | None = None,
    stop_after_s: Annotated[float, Field(gt=0, le=86_400)] = 3540.0,
) -> BotRunReport | State[Any]:
    """Answer Telegram commands (/status, /stop, ...) for `stop_after_s`, then end."""

    def body() -> BotRunReport | State[Any]:
        with entry_run(BOT_FLOW, blocks, config, live=False) as settings:
            section = telegram_settings(settings, telegram)
            missing = telegram_missing(section, to_notify=False)
            if missing:
                return not_configured("not polling", missing)
            return poll_commands_task(settings, section, stop_after_s)

    return settle("telegram bot", body)
