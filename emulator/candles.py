"""The candle feed the emulator replays, and how the clock moves through it.

Prices are kept as Decimal parsed from the source text (CSV) or from `str(float)` (lists), so the
numbers the emulator serves and fills at are exactly the numbers in the data set.

Time model (why it looks like this): the emulator's clock always sits on a candle *boundary*.
At clock time `now`, every candle with `close_time <= now` has closed and is public; the candle
that would close next is unknown (no look-ahead). The "current price" of a market is the close of
its last closed candle. `advance()` moves the clock to the next boundary of any market.
"""

from __future__ import annotations

import bisect
import csv
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

# Binance kline intervals the emulator can serve (aggregating from a finer feed when needed).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline. `close_time` is exclusive: the first millisecond of the next candle."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    duration_ms: int

    @property
    def close_time(self) -> int:
        return self.open_time + self.duration_ms


def _dec(value: object, where: str) -> Decimal:
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{where}: not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{where}: not a finite number: {value!r}")
    return result


def _infer_timeframe_ms(times: list[int], where: str) -> int:
    """Smallest gap between candles: feeds with missing candles still reveal their timeframe."""
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        raise ValueError(f"{where}: cannot infer the timeframe of a single candle; pass timeframe=")
    step = min(gaps)
    if step not in INTERVAL_MS.values():
        raise ValueError(
            f"{where}: candles are {step} ms apart, not a Binance interval; pass timeframe="
        )
    return step


class CandleFeed:
    """Candles of one market in time order, with lookups by clock time."""

    def __init__(self, candles: list[Candle], timeframe_ms: int, where: str = "candles") -> None:
        if not candles:
            raise ValueError(f"{where}: no candles")
        for prev, cur in itertools.pairwise(candles):
            if cur.open_time <= prev.open_time:
                raise ValueError(f"{where}: timestamps must increase ({cur.open_time})")
        self.candles = candles
        self.timeframe_ms = timeframe_ms
        self._close_times = [c.close_time for c in candles]
        self._open_times = [c.open_time for c in candles]

    @classmethod
    def from_rows(
        cls, rows: Sequence[Sequence[object]], timeframe: str | None = None, where: str = "rows"
    ) -> CandleFeed:
        """Rows are ccxt-shaped `[timestamp_ms, open, high, low, close, volume]`."""
        times = [int(_dec(r[0], where)) for r in rows]
        step = INTERVAL_MS[timeframe] if timeframe else _infer_timeframe_ms(times, where)
        candles = []
        for i, (ts, row) in enumerate(zip(times, rows, strict=True)):
            if len(row) < 6:
                raise ValueError(f"{where}[{i}]: need [ts, o, h, l, c, v], got {row!r}")
            o, h, low, c, v = (_dec(x, f"{where}[{i}]") for x in row[1:6])
            if h < max(o, c, low) or low > min(o, c) or v < 0:
                raise ValueError(f"{where}[{i}]: inconsistent candle {row!r}")
            candles.append(Candle(ts, o, h, low, c, v, step))
        return cls(candles, step, where)

    @classmethod
    def from_csv(cls, path: Path | str, timeframe: str | None = None) -> CandleFeed:
        """The /work/shared/data/ohlcv format: `timestamp,open,high,low,close,volume` header."""
        path = Path(path)
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            expected = ["timestamp", "open", "high", "low", "close", "volume"]
            if header is None or [h.strip().lower() for h in header[:6]] != expected:
                raise ValueError(f"{path}: header must be {','.join(expected)}, got {header}")
            rows: list[list[object]] = [[int(r[0]), *r[1:6]] for r in reader if r]
        return cls.from_rows(rows, timeframe, where=str(path))

    # -- clock lookups ------------------------------------------------------------------------

    def closed_count(self, now_ms: int) -> int:
        """How many candles have closed at clock time `now_ms`."""
        return bisect.bisect_right(self._close_times, now_ms)

    def current(self, now_ms: int) -> Candle | None:
        n = self.closed_count(now_ms)
        return self.candles[n - 1] if n else None

    def closing_between(self, after_ms: int, upto_ms: int) -> list[Candle]:
        """Candles whose close falls in (after_ms, upto_ms]: the ones a clock step reveals."""
        lo = bisect.bisect_right(self._close_times, after_ms)
        hi = bisect.bisect_right(self._close_times, upto_ms)
        return self.candles[lo:hi]

    def next_close_after(self, now_ms: int) -> int | None:
        i = bisect.bisect_right(self._close_times, now_ms)
        return self._close_times[i] if i < len(self._close_times) else None

    def close_time_of(self, index: int) -> int:
        return self._close_times[index]

    def visible(self, now_ms: int) -> list[Candle]:
        return self.candles[: self.closed_count(now_ms)]

    def served_intervals(self) -> list[int]:
        """The kline intervals this feed can serve: its own and every coarser multiple."""
        return [ms for ms in INTERVAL_MS.values() if ms % self.timeframe_ms == 0]

    def closed_klines(self, interval_ms: int, after_ms: int, upto_ms: int) -> list[Candle]:
        """Klines of `interval_ms` whose close falls in (after_ms, upto_ms], aggregated from
        the feed's candles in each (what Binance's kline stream sends as it closes them).
        Only buckets whose last feed candle has closed by `upto_ms` are complete."""
        out: list[Candle] = []
        close = (after_ms // interval_ms + 1) * interval_ms
        while close <= upto_ms:
            lo = bisect.bisect_left(self._open_times, close - interval_ms)
            hi = min(bisect.bisect_left(self._open_times, close), self.closed_count(upto_ms))
            if hi > lo:
                out.extend(_aggregate(self.candles[lo:hi], interval_ms))
            close += interval_ms
        return out

    # -- klines -------------------------------------------------------------------------------

    def klines(
        self,
        interval_ms: int,
        now_ms: int,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Candle]:
        """Klines as Binance selects them, built only from candles closed at `now_ms`.

        A coarser interval is aggregated from the feed; its last bucket may still be forming,
        exactly like Binance's in-progress kline. A kline of the feed's own interval is only
        served once closed, because the emulator does not know what happens inside a candle.
        """
        base = self.visible(now_ms)
        rows = base if interval_ms == self.timeframe_ms else _aggregate(base, interval_ms)
        if start_ms is not None:
            rows = [c for c in rows if c.open_time >= start_ms]
        if end_ms is not None:
            rows = [c for c in rows if c.open_time <= end_ms]
        return rows[:limit] if start_ms is not None else rows[-limit:]


def _aggregate(candles: list[Candle], interval_ms: int) -> list[Candle]:
    out: list[Candle] = []
    for c in candles:
        bucket = c.open_time - c.open_time % interval_ms
        if out and out[-1].open_time == bucket:
            last = out[-1]
            out[-1] = Candle(
                bucket,
                last.open,
                max(last.high, c.high),
                min(last.low, c.low),
                c.close,
                last.volume + c.volume,
                interval_ms,
            )
        else:
            out.append(Candle(bucket, c.open, c.high, c.low, c.close, c.volume, interval_ms))
    return out
