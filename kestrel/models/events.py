"""Events: the audit trail and the notification outbox. Every decision becomes one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from kestrel.mode import TradingMode
from kestrel.models._base import KestrelModel, utcnow


class EventType(StrEnum):
    ORDER_CREATED = "ORDER_CREATED"
    ORDER_EXECUTED = "ORDER_EXECUTED"
    ORDER_PARTIALLY_FILLED = "ORDER_PARTIALLY_FILLED"
    ORDER_CANCELED = "ORDER_CANCELED"
    ORDER_FAILED = "ORDER_FAILED"
    ORDER_REJECTED = "ORDER_REJECTED"
    SLTP_CREATED = "SLTP_CREATED"
    SLTP_FAILED = "SLTP_FAILED"
    POSITION_OPENED = "POSITION_OPENED"
    POSITION_CLOSED = "POSITION_CLOSED"
    FEE_NOT_VALUED = "FEE_NOT_VALUED"  # a fee in a currency with no rate: not in the PnL
    TRADE_DECIDED = "TRADE_DECIDED"
    TRADE_HELD = "TRADE_HELD"
    TRADE_BLOCKED = "TRADE_BLOCKED"
    ALERT_EMITTED = "ALERT_EMITTED"
    EMERGENCY_STOP_SET = "EMERGENCY_STOP_SET"
    EMERGENCY_STOP_CLEARED = "EMERGENCY_STOP_CLEARED"
    CIRCUIT_BREAKER_TRIPPED = "CIRCUIT_BREAKER_TRIPPED"
    CIRCUIT_BREAKER_RESET = "CIRCUIT_BREAKER_RESET"
    SECURITY = "SECURITY"
    SETTINGS_CHANGED = "SETTINGS_CHANGED"
    DAILY_SUMMARY = "DAILY_SUMMARY"
    CRITICAL = "CRITICAL"


class Event(KestrelModel):
    """`event_id` is deterministic where the event reports a state change (e.g.
    '<client_order_id>:FILLED'), so recording it twice after a crash stores it once."""

    event_id: str = Field(min_length=1)
    type: EventType
    mode: TradingMode
    symbol: str | None = None
    client_order_id: str | None = None
    reasons: list[str] = Field(default_factory=list)
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    seq: int | None = Field(default=None, description="assigned by the store, increasing")
