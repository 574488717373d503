"""The market-data seam: where candles and the current market time come from.

Three implementations share it: a live ccxt exchange, CSV replays and a seeded simulation.
Strategies, risk and the paper exchange ask the feed for "now" instead of the wall clock, so a
replay of 2019 looks exactly like a live market to everything above it.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from kestrel.models import Candle, CandleSeries

FeedKind = Literal["live", "replay", "simulated"]
DEFAULT_LIMIT = 500


@runtime_checkable
class MarketFeed(Protocol):
    """Closed candles and market time per symbol.

    `candles` and `candles_between` only ever return candles that have CLOSED at `now_ms`
    (a forming candle would let a strategy, or the paper exchange, see the future).
    """

    kind: FeedKind
    label: str

    def candles(
        self, symbol: str, timeframe: str, limit: int | None = DEFAULT_LIMIT
    ) -> CandleSeries:
        """The last `limit` closed candles (None: all the feed has visible)."""
        ...

    def now_ms(self, symbol: str) -> int:
        """Market time for `symbol` in epoch ms (replays: the close of the last visible candle)."""
        ...

    def candles_between(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Closed candles at the feed's finest resolution with start_ms <= open time < end_ms.

        This is what the paper exchange matches orders against.
        """
        ...

    def advance(self, steps: int = 1) -> None:
        """Move replayed/simulated clocks forward `steps` candles; a no-op for live data."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when a replay has no more candles to show (never for live data)."""
        ...
