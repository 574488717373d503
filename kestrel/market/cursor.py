"""What replayed and simulated feeds share: candles revealed one at a time by a stored cursor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left
from dataclasses import dataclass, field

from kestrel.errors import InvalidMarketData
from kestrel.market.base import DEFAULT_LIMIT, FeedKind
from kestrel.market.clock import Cursor, MarketClock
from kestrel.market.resample import resample_closed
from kestrel.models import Candle, CandleSeries, timeframe_ms
from kestrel.store.base import Store


@dataclass
class Track:
    """One symbol's candles at the feed's base timeframe, with open times for bisecting."""

    timeframe: str
    candles: list[Candle] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)

    @property
    def period_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    def extend(self, candles: list[Candle]) -> None:
        self.candles.extend(candles)
        self.timestamps.extend(c.timestamp for c in candles)


class CursorFeed(ABC):
    """A feed whose "now" for a symbol is the close of its last visible candle.

    The number of visible candles lives in the Store (see clock.py); candle data lives in
    memory and is rebuilt identically by every process (read from a file, or regenerated from
    the seed).
    """

    kind: FeedKind
    label: str

    def __init__(self, store: Store, symbols: list[str], warmup: int) -> None:
        if warmup < 1:
            raise ValueError("warmup must be at least 1 candle")
        self._clock = MarketClock(store, self.kind)
        self._symbols = list(symbols)
        self.warmup = warmup

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @abstractmethod
    def _cursor(self, symbol: str) -> Cursor: ...

    @abstractmethod
    def _track(self, symbol: str, need: int) -> Track:
        """The symbol's data with at least `need` candles (if it has that many)."""

    def _check(self, symbol: str) -> None:
        if symbol not in self._symbols:
            raise InvalidMarketData(
                f"{self.label} has no data for {symbol}; it has {', '.join(self._symbols)}"
            )

    def _visible(self, symbol: str) -> tuple[Track, int]:
        self._check(symbol)
        visible = self._clock.visible(symbol, self._cursor(symbol))
        return self._track(symbol, visible), visible

    def now_ms(self, symbol: str) -> int:
        track, visible = self._visible(symbol)
        return track.candles[visible - 1].timestamp + track.period_ms

    def candles(
        self, symbol: str, timeframe: str, limit: int | None = DEFAULT_LIMIT
    ) -> CandleSeries:
        track, visible = self._visible(symbol)
        if timeframe == track.timeframe:
            start = 0 if limit is None else max(0, visible - limit)
            chosen = track.candles[start:visible]
        else:
            now = track.candles[visible - 1].timestamp + track.period_ms
            # Candles past the cursor open at/after `now`, so the bucket cut leaves them out.
            chosen = resample_closed(
                track.candles,
                track.timestamps,
                track.period_ms,
                timeframe_ms(timeframe),
                now,
                limit,
            )
        return CandleSeries(symbol=symbol, timeframe=timeframe, candles=chosen, source=self.label)

    def candles_between(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        track, visible = self._visible(symbol)
        lo = bisect_left(track.timestamps, start_ms, 0, visible)
        hi = bisect_left(track.timestamps, end_ms, 0, visible)
        return track.candles[lo:hi]

    def advance(self, steps: int = 1) -> None:
        self._clock.advance({s: self._cursor(s) for s in self._symbols}, steps)

    def reset(self) -> None:
        """Start over at the warm-up (every symbol)."""
        self._clock.reset({s: self._cursor(s) for s in self._symbols})

    def remaining(self, symbol: str) -> int | None:
        """Candles still to come for `symbol` (None: unbounded)."""
        cursor = self._cursor(symbol)
        if cursor.length is None:
            return None
        return cursor.length - self._clock.visible(symbol, cursor)

    @property
    def exhausted(self) -> bool:
        """True once every symbol's cursor is at the end of its data."""
        return all(self.remaining(s) == 0 for s in self._symbols)
