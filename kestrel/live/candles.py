"""Which closed candles a symbol has, from streams and REST: dedupe, order, holes.

A stream delivers a closed kline at most once per connection, but a reconnect can replay the
last one (duplicate), deliver an older one late (out of order) or miss some (a gap). The book
keeps the open times of closed candles per (symbol, timeframe); `gap_after` says which candles
are missing between the last one seen and a new one, so the engine fills them by REST
`fetch_ohlcv` before the next cycle, and `hole` says whether a series may be traded on at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

__all__ = ["CandleBook", "Seen", "hole"]

KEEP = 500  # open times kept per series: far more than any gap worth filling


class Seen(StrEnum):
    NEW = "new"  # the next candle, or a later one (see gap_after)
    DUPLICATE = "duplicate"
    STALE = "stale"  # older than the newest known: delivered out of order


def hole(open_times: Sequence[int], period_ms: int) -> int | None:
    """The open time of the first missing candle in an ascending series, None if complete."""
    for before, after in pairwise(open_times):
        if after - before != period_ms:
            return before + period_ms
    return None


@dataclass
class _Series:
    period_ms: int
    times: list[int] = field(default_factory=list)


class CandleBook:
    """Closed-candle open times per (symbol, timeframe) period; not thread-safe (one loop)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, int], _Series] = {}

    def _get(self, symbol: str, period_ms: int) -> _Series:
        return self._series.setdefault((symbol, period_ms), _Series(period_ms))

    def times(self, symbol: str, period_ms: int) -> list[int]:
        """Known closed-candle open times, ascending (a copy)."""
        return list(self._get(symbol, period_ms).times)

    def last(self, symbol: str, period_ms: int) -> int | None:
        times = self._get(symbol, period_ms).times
        return times[-1] if times else None

    def gap_after(self, symbol: str, period_ms: int, open_time: int) -> list[int]:
        """Open times missing between the newest known candle and `open_time` (exclusive)."""
        last = self.last(symbol, period_ms)
        if last is None or open_time <= last:
            return []
        return list(range(last + period_ms, open_time, period_ms))

    def see(self, symbol: str, period_ms: int, open_time: int) -> Seen:
        """Record a closed candle; says whether it is new, a duplicate or out of order."""
        if open_time % period_ms:
            raise ValueError(f"{symbol}: open time {open_time} is not on a {period_ms} ms boundary")
        series = self._get(symbol, period_ms)
        if series.times and open_time == series.times[-1]:
            return Seen.DUPLICATE
        if series.times and open_time < series.times[-1]:
            if open_time in series.times:
                return Seen.DUPLICATE
            return Seen.STALE
        series.times.append(open_time)
        del series.times[:-KEEP]
        return Seen.NEW

    def fill(self, symbol: str, period_ms: int, open_times: Iterable[int]) -> None:
        """Merge candles fetched by REST (a gap filled): kept sorted and unique."""
        series = self._get(symbol, period_ms)
        merged = sorted(set(series.times) | set(open_times))
        series.times = merged[-KEEP:]

    def complete_through(self, symbol: str, period_ms: int, open_time: int, depth: int) -> bool:
        """The `depth` candles ending with `open_time` are all known: safe to trade on."""
        known = set(self._get(symbol, period_ms).times)
        return all(open_time - i * period_ms in known for i in range(depth))
