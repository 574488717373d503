"""Notification flows: drain the outbox (run it every minute or so), and the daily report
(record yesterday's DAILY_SUMMARY event, then drain so it goes out at once). One flow each,
which prefect.yaml deploys.

Give the deployments a concurrency limit of 1 anyway: two runs at once are safe (each event
is claimed once) but the second one would only wait behind the first. Without a bot token a
run completes doing nothing, and says so, rather than failing every minute on a machine
without Telegram.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Completed

from blocks.settings import BlockRefs
from flows._entry import entry_run, settle
from flows.params import SettingsOverrides, TelegramOverrides
from kestrel.models import Event
from kestrel.notify.outbox import DrainReport
from kestrel.notify.settings import TelegramSettings
from tasks.notify import drain_notifications_task, record_daily_report_task, telegram_settings

NOTIFY_FLOW = "kestrel-notifications"
REPORT_FLOW = "kestrel-daily-report"


def telegram_missing(telegram: TelegramSettings, *, to_notify: bool = True) -> str | None:
    """None if the bot can run (and, with `to_notify`, send), else why not."""
    has_token = (
        telegram.bot_token is not None and bool(telegram.bot_token.get_secret_value())
    ) or bool(telegram.token_secret_block)
    if not has_token:
        return "no Telegram bot token (KESTREL_TELEGRAM__BOT_TOKEN or a telegram block)"
    if to_notify and not telegram.can_notify:
        return "no notify_chat_id"
    return None


def not_configured(job: str, missing: str) -> State[Any]:
    message = f"Telegram not configured ({missing}); {job}"
    get_run_logger().info(message)
    return Completed(message=message)


@flow(name=NOTIFY_FLOW, log_prints=True)
def notifications(
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
    telegram: TelegramOverrides | None = None,
) -> DrainReport | State[Any]:
    """Deliver pending events to Telegram, each exactly once. `telegram` overrides the
    section (chat, filters, quiet hours); never put the token there: flow parameters are
    stored by Prefect. Use the environment or a Telegram Bot block."""

    def body() -> DrainReport | State[Any]:
        with entry_run(NOTIFY_FLOW, blocks, config, live=False) as settings:
            section = telegram_settings(settings, telegram)
            missing = telegram_missing(section)
            if missing:
                return not_configured("nothing sent", missing)
            return drain_notifications_task(settings, section)

    return settle("notifications", body)


@flow(name=REPORT_FLOW, log_prints=True)
def daily_report(
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
    telegram: TelegramOverrides | None = None,
    day: date | None = None,
) -> Event | State[Any]:
    """Record the day's summary (default: yesterday in the Telegram time zone; a day is
    reported once) and send it when a chat is configured."""

    def body() -> Event:
        with entry_run(
            REPORT_FLOW, blocks, config, live=False, dashboards="daily report", with_exchange=False
        ) as settings:
            section = telegram_settings(settings, telegram)
            event = record_daily_report_task(settings, section, day)
            if section.can_notify:
                drain_notifications_task(settings, section)
            return event

    return settle("daily report", body)
