"""Small builders for valid records, so each test states only the fields it cares about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kestrel.mode import TradingMode
from kestrel.models import (
    Event,
    EventType,
    Fill,
    Order,
    OrderType,
    Position,
    Side,
)
from kestrel.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_order(client_order_id: str, **overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "client_order_id": client_order_id,
        "mode": TradingMode.DEMO,
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "amount": Decimal("0.00012345"),
        "price": Decimal("65000.10"),
        "fee_cost": Decimal("0.000000001"),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Order(**fields)


def make_event(event_id: str, **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "type": EventType.ORDER_CREATED,
        "mode": TradingMode.DEMO,
        "symbol": "BTC/USDT",
        "message": f"event {event_id}",
        "data": {"amount": "0.1", "nested": {"n": 1}},
        "created_at": T0,
    }
    fields.update(overrides)
    return Event(**fields)


def make_fill(trade_id: str, client_order_id: str = "o-1", **overrides: Any) -> Fill:
    fields: dict[str, Any] = {
        "trade_id": trade_id,
        "client_order_id": client_order_id,
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "amount": Decimal("0.00010000"),
        "price": Decimal("64999.99"),
        "fee_cost": Decimal("0.0000001"),
        "fee_currency": "BTC",
        "timestamp": 1_714_564_800_000,
    }
    fields.update(overrides)
    return Fill(**fields)


def make_position(position_id: str, **overrides: Any) -> Position:
    fields: dict[str, Any] = {
        "position_id": position_id,
        "symbol": "BTC/USDT",
        "amount": Decimal("0.5"),
        "avg_entry_price": Decimal("64000.123456789"),
        "opened_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Position(**fields)


def transactional(store: Store) -> bool:
    """Whether atomic() really rolls back on this backend (SQLite, MongoDB replica sets)."""
    return bool(getattr(store, "transactional", False))
