"""Indicators computed once per series, read by candle position.

Why: a backtest steps through thousands of candles and the live analysis recomputes every
indicator over its whole window at each step (pandas-ta over ~200 rows, most of a step's
time). Indicators are causal (row i uses candles 0..i only: the strategy check's lookahead
test proves it), so the whole series can be computed once and the row of any candle read
back. `kestrel.analysis.engine.prepare` reads this cache when it is given one; the live
path passes none and computes as always.

What it equals: the row of a candle is the indicator computed on ALL the loaded candles up to
it, i.e. the live computation over a window starting at the series' first candle. A live
window of the last N candles gives the same values only where the indicator has forgotten
the candles before the window (SMA, Bollinger: exactly; EMA, RSI, MACD, ATR: only
approximately, see `kestrel strategy check`'s warm-up report). docs/backtest.md says so.

A lookup that does not match the cached series exactly (another source, a candle missing or
different) is a miss and the caller computes live: never a value from other candles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kestrel.analysis.frame import candles_to_frame
from kestrel.analysis.indicators import compute_indicators
from kestrel.models import CandleSeries
from kestrel.strategy.profiles import StrategyProfile

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["IndicatorCache", "indicator_key", "indicators_for"]

# (source, symbol, timeframe, indicator spec)
CacheKey = tuple[str, str, str, tuple[str, ...]]


def indicator_key(profile: StrategyProfile) -> tuple[str, ...]:
    """What decides a profile's indicator columns: the plugin and its parameters, or the
    built-in indicator spec."""
    if profile.plugin is not None:
        return ("plugin", profile.plugin, profile.plugin_params)
    return ("builtin", profile.indicators.model_dump_json())


def indicators_for(frame: pd.DataFrame, profile: StrategyProfile) -> pd.DataFrame:
    """The profile's indicator frame: its plugin's, or the built-in set (the one rule shared
    by the live analysis and the cache)."""
    if profile.plugin is not None:
        from kestrel.strategy.loader import strategy_for

        return strategy_for(profile).indicators(frame)
    return compute_indicators(frame, profile.indicators)


@dataclass
class _Entry:
    indicators: pd.DataFrame
    timestamps: np.ndarray[Any, Any]
    closes: np.ndarray[Any, Any]


@dataclass
class IndicatorCache:
    """Precomputed indicator frames keyed by (source, symbol, timeframe, indicator spec)."""

    entries: dict[CacheKey, _Entry] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    @staticmethod
    def key(series: CandleSeries, profile: StrategyProfile) -> CacheKey:
        return (series.source, series.symbol, series.timeframe, indicator_key(profile))

    def fill(self, series: CandleSeries, profile: StrategyProfile) -> None:
        """Compute the profile's indicators once over the whole `series`."""
        frame = candles_to_frame(series)
        self.entries[self.key(series, profile)] = _Entry(
            indicators=indicators_for(frame, profile),
            timestamps=frame["timestamp"].to_numpy(dtype="int64"),
            closes=frame["close"].to_numpy(dtype=float),
        )

    def window(self, series: CandleSeries, profile: StrategyProfile) -> pd.DataFrame | None:
        """The cached rows of exactly `series`' candles (same length and index as computing
        on them), or None when the cache does not hold these candles."""
        entry = self.entries.get(self.key(series, profile))
        found = self._rows(entry, series) if entry is not None else None
        if found is None or entry is None:
            self.misses += 1
            return None
        self.hits += 1
        start, stop = found
        return entry.indicators.iloc[start:stop]

    @staticmethod
    def _rows(entry: _Entry, series: CandleSeries) -> tuple[int, int] | None:
        """[start, stop) of `series` in the cached series: its first and last candles at the
        same positions with the same close, and as many rows between (candles are unique and
        ordered by timestamp in a CandleSeries, so equal ends mean equal candles)."""
        import numpy as np

        candles = series.candles
        if not candles:
            return None
        first, last = candles[0], candles[-1]
        stop = int(np.searchsorted(entry.timestamps, last.timestamp)) + 1
        start = stop - len(candles)
        if start < 0 or stop > len(entry.timestamps):
            return None
        if (
            entry.timestamps[stop - 1] != last.timestamp
            or entry.timestamps[start] != first.timestamp
            or entry.closes[stop - 1] != last.close
            or entry.closes[start] != first.close
        ):
            return None
        return start, stop
