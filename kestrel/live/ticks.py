"""Price ticks against open positions: which tick must run the exit path now.

The engine keeps, per symbol, the levels of its open positions (stop-loss, take-profit, and
the high-water mark of a trailing stop); a tick is checked in memory, with no request. A tick
that crosses a level of a position whose stop is not resting on the exchange triggers the
existing position monitor (kestrel.execution.monitor: its checks, lease, exit order and events),
with
that tick as the price it reads: `StreamPricedExchange` answers `fetch_ticker` from the
stream's last price, so the monitor acts on the price that crossed, not a later REST quote.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from kestrel.exchange.base import CcxtDict, ExchangeClient, OHLCVRow
from kestrel.execution.monitor import exit_reason
from kestrel.models import Position

__all__ = ["Levels", "ProtectionWatch", "StreamPricedExchange", "levels_of"]


class Levels(BaseModel):
    """One open position's triggers, read from the store after each sync/cycle/monitor pass."""

    position_id: str
    symbol: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_high: Decimal | None = None  # a trailing stop ratchets on a new high
    native_stop: Decimal | None = None  # a stop-loss order resting on the exchange


def levels_of(position: Position, native_stop: Decimal | None) -> Levels:
    trailing = position.trailing_stop_pct is not None
    return Levels(
        position_id=position.position_id,
        symbol=position.symbol,
        stop_loss=position.stop_loss,
        take_profit=position.take_profit,
        trailing_high=(position.high_water_mark or position.avg_entry_price) if trailing else None,
        native_stop=native_stop,
    )


class ProtectionWatch:
    """Per-symbol levels; `crossed` says whether a tick needs the monitor."""

    def __init__(self) -> None:
        self._levels: dict[str, list[Levels]] = {}

    def replace(self, levels: Iterable[Levels]) -> None:
        by_symbol: dict[str, list[Levels]] = {}
        for item in levels:
            by_symbol.setdefault(item.symbol, []).append(item)
        self._levels = by_symbol

    def symbols(self) -> set[str]:
        return set(self._levels)

    def crossed(self, symbol: str, price: Decimal) -> str | None:
        """Why `price` needs an exit or a trailing update now, None if nothing to do."""
        for item in self._levels.get(symbol, []):
            if item.trailing_high is not None and price > item.trailing_high:
                return f"new high {price} > {item.trailing_high}: trailing stop ratchets"
            stop_hit = item.stop_loss is not None and price <= item.stop_loss
            if stop_hit and item.native_stop is not None and item.native_stop >= price:
                continue  # the exchange's own stop order executes it
            if stop_hit:
                return f"price {price} <= stop-loss {item.stop_loss}"
            if item.take_profit is not None and price >= item.take_profit:
                return f"price {price} >= take-profit {item.take_profit}"
        return None


def would_exit(position: Position, price: Decimal) -> bool:
    """The monitor's own rule (kestrel.execution.monitor.exit_reason), for callers holding a
    Position."""
    return exit_reason(position, price) is not None


class StreamPricedExchange:
    """An ExchangeClient whose `fetch_ticker` is the stream's last price when one is known;
    everything else goes to the wrapped exchange unchanged."""

    def __init__(self, inner: ExchangeClient) -> None:
        self.inner = inner
        self.id = inner.id
        self._prices: dict[str, tuple[Decimal, int]] = {}
        self._lock = threading.Lock()

    def set_price(self, symbol: str, price: Decimal, timestamp_ms: int) -> None:
        with self._lock:
            known = self._prices.get(symbol)
            if known is None or timestamp_ms >= known[1]:
                self._prices[symbol] = (price, timestamp_ms)

    def price(self, symbol: str) -> Decimal | None:
        with self._lock:
            known = self._prices.get(symbol)
        return known[0] if known else None

    def fetch_ticker(self, symbol: str, params: CcxtDict | None = None) -> CcxtDict:
        with self._lock:
            known = self._prices.get(symbol)
        if known is None:
            return self.inner.fetch_ticker(symbol, params)
        price, stamp = known
        return {"symbol": symbol, "last": float(price), "close": float(price), "timestamp": stamp}

    def load_markets(self, reload: bool = False) -> dict[str, CcxtDict]:
        return self.inner.load_markets(reload)

    def market(self, symbol: str) -> CcxtDict:
        return self.inner.market(symbol)

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[OHLCVRow]:
        return self.inner.fetch_ohlcv(symbol, timeframe, since, limit, params)

    def fetch_balance(self, params: CcxtDict | None = None) -> CcxtDict:
        return self.inner.fetch_balance(params)

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: CcxtDict | None = None,
    ) -> CcxtDict:
        return self.inner.create_order(symbol, type, side, amount, price, params)

    def fetch_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        return self.inner.fetch_order(id, symbol, params)

    def cancel_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        return self.inner.cancel_order(id, symbol, params)

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self.inner.fetch_open_orders(symbol, since, limit, params)

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self.inner.fetch_closed_orders(symbol, since, limit, params)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self.inner.fetch_my_trades(symbol, since, limit, params)

    def __getattr__(self, name: str) -> Any:
        """Anything else ccxt-specific (options, urls) is the wrapped exchange's."""
        return getattr(self.inner, name)
