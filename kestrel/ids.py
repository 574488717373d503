"""Deterministic identifiers. The same intent always gets the same client order id, so a retry
or a restart looks the order up on the exchange instead of placing it again."""

from __future__ import annotations

import hashlib

from kestrel.mode import TradingMode
from kestrel.models import OrderRole

_ROLE_TAG = {
    OrderRole.PRIMARY: "p",
    OrderRole.STOP_LOSS: "s",
    OrderRole.TAKE_PROFIT: "t",
    OrderRole.EXIT: "x",
}


def cycle_id(symbol: str, timeframe: str, candle_timestamp: int) -> str:
    """A cycle acts at most once per closed candle of a symbol: that candle names the cycle."""
    return f"{symbol}|{timeframe}|{candle_timestamp}"


def client_order_id(mode: TradingMode, cycle: str, symbol: str, role: OrderRole) -> str:
    """At most 36 chars of [A-Za-z0-9-_] (Binance's newClientOrderId rule)."""
    digest = hashlib.sha256(f"{mode}|{cycle}|{symbol}|{role}".encode()).hexdigest()[:26]
    return f"k{mode.value[0].lower()}{_ROLE_TAG[role]}-{digest}"
