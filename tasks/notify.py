"""Prefect tasks around kestrel.notify: drain the outbox, record the daily report, poll
commands. Retries only on transient Telegram trouble (TelegramUnavailable); a rejected
token or a blocked chat (DeliveryBlocked) fails at once, since retrying cannot fix it.

The token is resolved *inside* each task (environment, else a Prefect Secret block) and is
never a task or flow parameter, so it never lands in Prefect's database or UI.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, TelegramUnavailable
from kestrel.mode import trading_mode
from kestrel.models import Event, utcnow
from kestrel.notify.bot import BotRunReport, run_bot
from kestrel.notify.outbox import DrainReport, drain_outbox
from kestrel.notify.redact import register_token
from kestrel.notify.report import build_daily_summary, previous_day, record_daily_summary
from kestrel.notify.settings import TelegramSettings
from kestrel.store import open_store


def telegram_settings(
    settings: KestrelSettings, overrides: dict[str, Any] | None = None
) -> TelegramSettings:
    """The `telegram` section of the settings (or TelegramSettings from the environment
    while KestrelSettings has no such section), with per-run overrides applied."""
    base = getattr(settings, "telegram", None)
    current = base if isinstance(base, TelegramSettings) else TelegramSettings()
    if not overrides:
        return current
    return TelegramSettings(**{**current.model_dump(), **overrides})


def resolve_token(telegram: TelegramSettings) -> str:
    """Environment first, then the named Prefect Secret block; registered for scrubbing."""
    if telegram.bot_token is not None and telegram.bot_token.get_secret_value():
        token = telegram.bot_token.get_secret_value()
    elif telegram.token_secret_block:
        from prefect.blocks.system import Secret

        block = cast(Secret[str], Secret.load(telegram.token_secret_block))  # sync context
        token = str(block.get())
    else:
        raise ConfigError(
            "no Telegram bot token: set KESTREL_TELEGRAM__BOT_TOKEN or "
            "telegram.token_secret_block (a Prefect Secret block name)"
        )
    register_token(token)
    return token


def telegram_transient_only(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as raised:
        exc = raised
    return isinstance(exc, TelegramUnavailable)


NOTIFY_RETRY_OPTIONS: dict[str, Any] = {
    "retries": 5,
    "retry_delay_seconds": exponential_backoff(backoff_factor=5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": telegram_transient_only,
}


@task(name="drain-notifications", cache_policy=NO_CACHE, **NOTIFY_RETRY_OPTIONS)
def drain_notifications_task(settings: KestrelSettings, telegram: TelegramSettings) -> DrainReport:
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            report = drain_outbox(store, telegram, token=resolve_token(telegram))
        finally:
            store.close()
    report.raise_for_stop()
    return report


@task(name="record-daily-report", cache_policy=NO_CACHE)
def record_daily_report_task(
    settings: KestrelSettings, telegram: TelegramSettings, day: date | None = None
) -> Event:
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            report_day = day or previous_day(utcnow(), telegram.zone)
            summary = build_daily_summary(store, report_day, telegram.zone)
            return record_daily_summary(store, summary)
        finally:
            store.close()


@task(name="poll-telegram-commands", cache_policy=NO_CACHE, **NOTIFY_RETRY_OPTIONS)
def poll_commands_task(
    settings: KestrelSettings, telegram: TelegramSettings, stop_after_s: float
) -> BotRunReport:
    from blocks.exchange_account import use_exchange_account
    from kestrel.manual.telegram import register_manual_commands

    register_manual_commands(settings, use_exchange_account)
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            return run_bot(telegram, store, stop_after_s, token=resolve_token(telegram))
        finally:
            store.close()
