"""The Prefect wrappers, run as real flows: the token comes from the environment (never a
parameter), the outbox drains, the daily report is recorded and sent, the bot run ends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fakes.telegram_server import FakeTelegramServer
from kestrel.config.settings import load_settings
from kestrel.mode import TradingMode
from kestrel.models import EventType
from kestrel.store import open_store

from .helpers import NOTIFY_CHAT, store_events

pytestmark = pytest.mark.prefect


def test_notification_and_daily_report_flows(
    prefect_harness: None,
    server: FakeTelegramServer,
    tmp_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.notifications import daily_report, notifications
    from flows.telegram_bot import telegram_bot

    monkeypatch.setenv("KESTREL_TELEGRAM__BOT_TOKEN", server.token)
    config = {"data_dir": str(tmp_data_dir)}
    telegram = {
        "api_base_url": server.base_url,
        "notify_chat_id": NOTIFY_CHAT,
        "cursor_grace_s": 0,
        "poll_timeout_s": 1,
    }
    store = open_store(load_settings(**config), TradingMode.DEMO)
    try:
        store_events(store, 2)
        drained = notifications(config=config, telegram=telegram)
        event = daily_report(config=config, telegram=telegram, day=date(2026, 3, 4))
        bot = telegram_bot(config=config, telegram=telegram, stop_after_s=1)
    finally:
        store.close()

    assert drained.sent == 2
    assert event.type is EventType.DAILY_SUMMARY
    assert "Daily report" in server.sent_messages()[-1].text
    assert len(server.sent_messages()) == 3
    assert bot.handled == 0
    assert server.requests("getUpdates")
