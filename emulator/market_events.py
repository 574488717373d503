"""Binance market-stream payloads (kline, trade, bookTicker) rendered from the candle feed.

The feed only knows closed candles, so the streams carry what the clock reveals: on each step a
closed kline (`"x": true`) per market, a trade at its close, and the book around that price.
`tick` adds a synthetic trade/bookTicker at any price so protection can be exercised between
candles (the engine's own price does not move: only the stream sees the tick).
"""

from __future__ import annotations

from decimal import Decimal
from itertools import count
from typing import Any

from emulator.candles import INTERVAL_MS, Candle
from emulator.orders import fmt

_trade_ids = count(1)


def interval_name(timeframe_ms: int) -> str | None:
    """`3600000` -> `"1h"`: the kline stream suffix of a feed's own timeframe."""
    for name, ms in INTERVAL_MS.items():
        if ms == timeframe_ms:
            return name
    return None


def kline_event(
    market_id: str, interval: str, candle: Candle, event_time_ms: int
) -> dict[str, Any]:
    """A closed kline, as `<symbol>@kline_<interval>` sends it."""
    return {
        "e": "kline",
        "E": event_time_ms,
        "s": market_id,
        "k": {
            "t": candle.open_time,
            "T": candle.close_time - 1,
            "s": market_id,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": fmt(candle.open),
            "c": fmt(candle.close),
            "h": fmt(candle.high),
            "l": fmt(candle.low),
            "v": fmt(candle.volume),
            "n": 0,
            "x": True,
            "q": fmt(candle.volume * candle.close),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


def trade_event(
    market_id: str, price: Decimal, qty: Decimal, trade_time_ms: int, event_time_ms: int
) -> dict[str, Any]:
    """A public trade, as `<symbol>@trade` sends it."""
    return {
        "e": "trade",
        "E": event_time_ms,
        "s": market_id,
        "t": next(_trade_ids),
        "p": fmt(price),
        "q": fmt(qty),
        "T": trade_time_ms,
        "m": False,
        "M": True,
    }


def book_ticker_event(
    market_id: str, bid: Decimal, ask: Decimal, qty: Decimal, update_id: int
) -> dict[str, Any]:
    """Best bid/ask, as `<symbol>@bookTicker` sends it (spot: no event type field)."""
    return {
        "u": update_id,
        "s": market_id,
        "b": fmt(bid),
        "B": fmt(qty),
        "a": fmt(ask),
        "A": fmt(qty),
    }
