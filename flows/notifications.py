"""Notification flows: drain the outbox (run it every minute or so), and the daily report
(record yesterday's DAILY_SUMMARY event, then drain so it goes out at once).

Give the deployments a concurrency limit of 1 anyway: two runs at once are safe (each event
is claimed once) but the second one would only wait behind the first.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from kestrel.mode import trading_mode
from kestrel.models import Event
from kestrel.notify.outbox import DrainReport
from kestrel.operator.run import settings_for_run
from tasks.notify import drain_notifications_task, record_daily_report_task, telegram_settings


@flow(name="notifications", log_prints=True)
def notifications(
    config: dict[str, Any] | None = None, telegram: dict[str, Any] | None = None
) -> DrainReport:
    """`telegram` overrides the section (chat, filters, quiet hours); never put the token
    here: flow parameters are stored by Prefect. Use the environment or a Secret block."""
    settings = settings_for_run(config, run="notifications")
    with trading_mode(settings.mode):
        return drain_notifications_task(settings, telegram_settings(settings, telegram))


@flow(name="daily-report", log_prints=True)
def daily_report(
    config: dict[str, Any] | None = None,
    telegram: dict[str, Any] | None = None,
    day: date | None = None,
) -> Event:
    """`day` defaults to yesterday in the configured time zone; a day is reported once."""
    settings = settings_for_run(config, run="daily-report")
    section = telegram_settings(settings, telegram)
    with trading_mode(settings.mode):
        event = record_daily_report_task(settings, section, day)
        if section.can_notify:
            drain_notifications_task(settings, section)
        return event
