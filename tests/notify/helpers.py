"""Helpers for notification tests: settings pointed at the fake server, and events shaped
the way the rest of Kestrel stores them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from fakes.telegram_server import FakeTelegramServer
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType
from kestrel.notify.bot import run_bot
from kestrel.notify.settings import TelegramSettings
from kestrel.store.base import Store

NOTIFY_CHAT = 424242
OWNER_CHAT = 1001
STRANGER_CHAT = 6666


def make_settings(server: FakeTelegramServer, **overrides: Any) -> TelegramSettings:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "api_base_url": server.base_url,
        "notify_chat_id": NOTIFY_CHAT,
        "command_chat_ids": [OWNER_CHAT],
        "cursor_grace_s": 0,
        "retry_backoff_s": 0,
        "request_timeout_s": 1.0,
        "poll_timeout_s": 1,
    }
    values.update(overrides)
    return TelegramSettings(**values)


def fill_event(n: int, symbol: str = "BTC/USDT", **data: Any) -> Event:
    """An ORDER_EXECUTED event shaped like kestrel.execution.orders writes them."""
    payload: dict[str, Any] = {
        "side": "buy",
        "role": "PRIMARY",
        "amount": "0.015",
        "filled": "0.015",
        "average_price": str(Decimal("64250.5") + n),
        "fee_cost": "0.96",
        "status": "FILLED",
        "status_source": "order_history",
    }
    payload.update(data)
    return Event(
        event_id=f"kst-{n:04d}:FILLED",
        type=EventType.ORDER_EXECUTED,
        mode=TradingMode.DEMO,
        symbol=symbol,
        client_order_id=f"kst-{n:04d}",
        message=f"PRIMARY buy 0.015 {symbol} market: FILLED (via order_history)",
        data=payload,
    )


def store_events(store: Store, count: int, start: int = 1) -> list[Event]:
    return store.append_events([fill_event(n) for n in range(start, start + count)])


def ref(event: Event) -> str:
    """The reference every message about `event` carries in its footer."""
    return f"#{event.seq}"


@contextmanager
def running_bot(
    server: FakeTelegramServer, settings: TelegramSettings, store: Store, **options: Any
) -> Iterator[dict[str, Any]]:
    """The bot in a thread (as `kestrel telegram` runs it), stopped and joined on exit;
    `options` go to run_bot (e.g. `sleep`)."""
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["report"] = run_bot(
                settings, store, stop_after_s=120, stop_event=stop, **options
            )
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="kestrel-telegram-bot")
    thread.start()
    try:
        server.wait_for_request("getUpdates", timeout=30)
        yield outcome
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the bot did not stop"
    if "error" in outcome:
        raise outcome["error"]
