"""`MarketSource` over a ccxt.pro exchange (binance in production, the emulator in tests).

Ticks come from the trade stream (`watch_trades`): every trade is a price, and it is the
stream Binance sends first. Order events come from the user data stream (`watch_orders`),
reduced to what the engine needs (`OrderUpdate`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kestrel.live.dedupe import OrderUpdate
from kestrel.money import to_decimal

__all__ = ["CcxtProSource"]


class CcxtProSource:
    def __init__(self, exchange: Any) -> None:
        """exchange: a `ccxt.pro` instance (async); its owner closes it."""
        self.exchange = exchange

    async def watch_candles(self, symbol: str, timeframe: str) -> list[list[float]]:
        rows = await self.exchange.watch_ohlcv(symbol, timeframe)
        return [list(r) for r in rows]

    async def watch_tick(self, symbol: str) -> tuple[Decimal, int]:
        trades = await self.exchange.watch_trades(symbol)
        last = trades[-1]
        return to_decimal(last["price"]), int(last["timestamp"] or 0)

    async def watch_orders(self) -> list[OrderUpdate]:
        return self._updates(await self.exchange.watch_orders())

    async def watch_orders_rest(self) -> list[OrderUpdate]:
        """The same from REST (open orders): the polling fallback's view."""
        return self._updates(await self.exchange.fetch_open_orders())

    @staticmethod
    def _updates(orders: list[dict[str, Any]]) -> list[OrderUpdate]:
        return [
            OrderUpdate(
                order_id=str(o["id"]),
                symbol=str(o["symbol"]),
                status=str(o["status"]),
                filled=to_decimal(o.get("filled") or 0),
                timestamp=o.get("lastUpdateTimestamp") or o.get("timestamp"),
            )
            for o in orders
        ]

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: int | None, limit: int
    ) -> list[list[float]]:
        rows = await self.exchange.fetch_ohlcv(symbol, timeframe, since, limit)
        return [list(r) for r in rows]
