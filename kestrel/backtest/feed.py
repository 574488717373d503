"""The backtest's market feed: every symbol's candles from CSV files on ONE simulated clock.

Why not the demo's ReplayFeed: it advances every symbol one candle per step whatever its
timeframe, so a 1h and a 5m series drift apart. Here "now" is one number for all symbols;
a symbol's candles are visible once they have closed at that time (open + period <= now),
whatever their timeframe. It is a MarketFeed, so the paper exchange, the cycle, risk and
the monitor read it exactly as they read a live or replayed feed.

Two tracks per symbol:
- analysis: the candles of the symbol's timeframe (its file, or a finer file aggregated);
- detail: what the paper exchange matches orders against (`candles_between`): the finest
  file whose timeframe divides the analysis timeframe, where it has data, and the analysis
  candles where it has none (a 1m file often starts later than the 5m one).
Nothing is ever filled in: a gap in the data stays a gap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kestrel.errors import ConfigError, InvalidMarketData
from kestrel.market.base import DEFAULT_LIMIT, FeedKind
from kestrel.market.csvfile import parse_candle_filename, read_candle_csv
from kestrel.market.resample import resample_closed
from kestrel.models import Candle, CandleSeries, timeframe_ms


@dataclass
class Series:
    """Candles with their open and close times, for bisecting by time."""

    candles: list[Candle] = field(default_factory=list)
    opens: list[int] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, candles: list[Candle], period_ms: int) -> Series:
        return cls(
            candles, [c.timestamp for c in candles], [c.timestamp + period_ms for c in candles]
        )

    def closed_count(self, now_ms: int) -> int:
        """How many candles have closed at `now_ms`."""
        return bisect_right(self.closes, now_ms)


@dataclass
class SymbolData:
    symbol: str
    timeframe: str
    analysis: Series
    detail: Series
    files: list[Path]

    @property
    def period_ms(self) -> int:
        return timeframe_ms(self.timeframe)


def symbol_files(directory: Path, symbol: str) -> dict[str, Path]:
    """timeframe -> file for `symbol` in `directory`."""
    found: dict[str, Path] = {}
    if not directory.is_dir():
        raise ConfigError(f"--data {directory}: not a folder of <BASE>_<QUOTE>-<tf>.csv files")
    for path in sorted(directory.iterdir()):
        parsed = parse_candle_filename(path)
        if parsed is not None and parsed[0] == symbol and path.is_file():
            found[parsed[1]] = path
    return found


def aggregate(candles: list[Candle], base_ms: int, target_ms: int) -> list[Candle]:
    """Every closed `target_ms` bucket of `candles` (the live feed's own resampling rule)."""
    if base_ms == target_ms or not candles:
        return list(candles)
    end = candles[-1].timestamp + base_ms
    opens = [c.timestamp for c in candles]
    return resample_closed(candles, opens, base_ms, target_ms, end, None)


def load_symbol(directory: Path, symbol: str, timeframe: str, *, detail: bool) -> SymbolData:
    """The symbol's analysis and detail tracks; ConfigError naming what is missing."""
    files = symbol_files(directory, symbol)
    target = timeframe_ms(timeframe)
    if not files:
        raise ConfigError(
            f"no candle file for {symbol} in {directory} "
            f"(expected {symbol.replace('/', '_')}-{timeframe}.csv)"
        )
    dividing = sorted(
        (
            (timeframe_ms(tf), tf, path)
            for tf, path in files.items()
            if target % timeframe_ms(tf) == 0
        ),
    )
    if not dividing:
        raise ConfigError(
            f"{symbol}: no file in {directory} at {timeframe} or a timeframe dividing it "
            f"(it has {', '.join(sorted(files))})"
        )
    exact = [entry for entry in dividing if entry[0] == target]
    base_ms, _, base_path = exact[0] if exact else dividing[-1]
    base = read_candle_csv(base_path)
    analysis_candles = aggregate(base, base_ms, target)
    if not analysis_candles:
        raise InvalidMarketData(f"{base_path}: no complete {timeframe} candle")
    analysis = Series.of(analysis_candles, target)
    used = [base_path]
    detail_series = analysis
    finest_ms, _, finest_path = dividing[0]
    if detail and finest_ms < target:
        fine = read_candle_csv(finest_path)
        detail_series = merge_detail(analysis_candles, target, fine, finest_ms)
        used.append(finest_path)
    return SymbolData(symbol, timeframe, analysis, detail_series, used)


def merge_detail(coarse: list[Candle], coarse_ms: int, fine: list[Candle], fine_ms: int) -> Series:
    """Fine candles over the span they cover, coarse candles before and after it."""
    first, last_close = fine[0].timestamp, fine[-1].timestamp + fine_ms
    before = [c for c in coarse if c.timestamp + coarse_ms <= first]
    after = [c for c in coarse if c.timestamp >= last_close]
    candles = [*before, *fine, *after]
    closes = (
        [c.timestamp + coarse_ms for c in before]
        + [c.timestamp + fine_ms for c in fine]
        + [c.timestamp + coarse_ms for c in after]
    )
    return Series(candles, [c.timestamp for c in candles], closes)


class BacktestFeed:
    """MarketFeed over loaded SymbolData, on one clock set by the engine (`now`)."""

    kind: FeedKind = "replay"

    def __init__(self, data: Mapping[str, SymbolData]) -> None:
        if not data:
            raise ConfigError("a backtest needs at least one symbol")
        self.data = dict(data)
        self.now = 0
        names = sorted({path.name for d in self.data.values() for path in d.files})
        self.label = "replay:" + ",".join(names)

    @classmethod
    def load(
        cls, directory: Path, timeframes: Mapping[str, str], *, detail: bool = True
    ) -> BacktestFeed:
        return cls(
            {
                symbol: load_symbol(directory, symbol, tf, detail=detail)
                for symbol, tf in timeframes.items()
            }
        )

    @property
    def symbols(self) -> list[str]:
        return list(self.data)

    def _get(self, symbol: str) -> SymbolData:
        try:
            return self.data[symbol]
        except KeyError:
            raise InvalidMarketData(
                f"{self.label} has no data for {symbol}; it has {', '.join(self.data)}"
            ) from None

    def now_ms(self, symbol: str) -> int:
        self._get(symbol)
        return self.now

    def candles(
        self, symbol: str, timeframe: str, limit: int | None = DEFAULT_LIMIT
    ) -> CandleSeries:
        data = self._get(symbol)
        if timeframe == data.timeframe:
            visible = data.analysis.closed_count(self.now)
            start = 0 if limit is None else max(0, visible - limit)
            chosen = data.analysis.candles[start:visible]
        else:
            series, base_ms = data.analysis, data.period_ms
            if timeframe_ms(timeframe) % base_ms:
                series, base_ms = (
                    data.detail,
                    min(
                        (b - a for a, b in zip(data.detail.opens, data.detail.closes, strict=True)),
                        default=base_ms,
                    ),
                )
            visible = series.closed_count(self.now)
            chosen = resample_closed(
                series.candles[:visible],
                series.opens[:visible],
                base_ms,
                timeframe_ms(timeframe),
                self.now,
                limit,
            )
        return CandleSeries(symbol=symbol, timeframe=timeframe, candles=chosen, source=self.label)

    def candles_between(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Detail candles opening in [start_ms, end_ms) that have closed by now."""
        detail = self._get(symbol).detail
        lo = bisect_left(detail.opens, start_ms)
        hi = min(bisect_left(detail.opens, end_ms), detail.closed_count(self.now))
        return detail.candles[lo:hi] if hi > lo else []

    def last_close(self, symbol: str) -> float | None:
        detail = self._get(symbol).detail
        visible = detail.closed_count(self.now)
        return detail.candles[visible - 1].close if visible else None

    def advance(self, steps: int = 1) -> None:
        """The engine moves the clock (BacktestFeed.now); stepping by candles means nothing
        for several timeframes at once."""

    @property
    def exhausted(self) -> bool:
        return False
