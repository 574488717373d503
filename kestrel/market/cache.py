"""The local Parquet candle cache that `kestrel data download` fills and replays read.

One file per exchange, symbol and timeframe: `<data_dir>/market/<exchange>/<BASE>_<QUOTE>-<tf>
.parquet`, the same `<BASE>_<QUOTE>-<tf>` naming as the CSV replay folders, so a replay (and a
backtest) can point at the folder as is. Next to the candles, the file's metadata keeps the
spans of time the exchange was ASKED about and answered (`covered`). That split is what makes
the cache honest and resumable:

- a hole in the candles INSIDE a covered span is a gap in the exchange's own data (downtime,
  a late listing): reported by `kestrel data list`, never filled or interpolated;
- time outside every covered span was never downloaded (an interrupted run): the next download
  fetches exactly that and nothing else.

Files are replaced atomically (write to a temporary file, then rename), so an interrupted
download leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from kestrel.errors import InvalidMarketData
from kestrel.models import Candle, timeframe_ms

if TYPE_CHECKING:
    import pyarrow as pa

CACHE_DIR = "market"
SUFFIX = ".parquet"
META_KEY = b"kestrel.cache"
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

Row = tuple[int, float, float, float, float, float]


class Span(BaseModel):
    """A half-open time range [start_ms, end_ms) of candle OPEN times."""

    model_config = ConfigDict(frozen=True)

    start_ms: int
    end_ms: int


class Gap(BaseModel):
    """Missing candles [start_ms, end_ms). `source`: the exchange has none there (reported,
    never filled); `not_downloaded`: nobody asked yet (the next download fetches it)."""

    model_config = ConfigDict(frozen=True)

    start_ms: int
    end_ms: int
    candles: int
    kind: Literal["source", "not_downloaded"]


class CacheMeta(BaseModel):
    """What the file holds, stored in the Parquet schema metadata."""

    model_config = ConfigDict(extra="forbid")

    exchange: str
    symbol: str
    timeframe: str
    covered: list[Span] = Field(default_factory=list)


class Coverage(BaseModel):
    """One cached series as `kestrel data list` shows it."""

    exchange: str
    symbol: str
    timeframe: str
    path: Path
    candles: int
    first_ms: int | None
    last_ms: int | None
    covered: list[Span]
    gaps: list[Gap]


class CachedSeries:
    """The candles of one cache file (sorted, unique open times) and its covered spans."""

    def __init__(self, meta: CacheMeta, rows: list[Row]) -> None:
        self.meta = meta
        self.rows = rows

    @property
    def step_ms(self) -> int:
        return timeframe_ms(self.meta.timeframe)

    def add(self, rows: Iterable[Row], span: Span) -> None:
        """Merge `rows` (all inside `span`) and mark `span` as asked-and-answered."""
        by_time = {r[0]: r for r in self.rows}
        by_time.update((r[0], r) for r in rows)
        self.rows = [by_time[t] for t in sorted(by_time)]
        self.meta.covered = merge_spans([*self.meta.covered, span])

    def missing(self, want: Span) -> list[Span]:
        """The parts of `want` no download has covered yet."""
        return subtract(want, self.meta.covered)

    def candles(self) -> list[Candle]:
        return [
            Candle(timestamp=t, open=o, high=h, low=low, close=c, volume=v)
            for t, o, h, low, c, v in self.rows
        ]


def symbol_stem(symbol: str) -> str:
    """BTC/USDT -> BTC_USDT (":" of derivatives becomes "_" too)."""
    return symbol.replace("/", "_").replace(":", "_")


def cache_dir(data_dir: Path, exchange: str) -> Path:
    return data_dir / CACHE_DIR / exchange


def cache_path(data_dir: Path, exchange: str, symbol: str, timeframe: str) -> Path:
    return cache_dir(data_dir, exchange) / f"{symbol_stem(symbol)}-{timeframe}{SUFFIX}"


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping, non-touching spans covering the same time."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start_ms):
        if span.end_ms <= span.start_ms:
            continue
        if out and span.start_ms <= out[-1].end_ms:
            last = out[-1]
            out[-1] = Span(start_ms=last.start_ms, end_ms=max(last.end_ms, span.end_ms))
        else:
            out.append(span)
    return out


def subtract(want: Span, have: Iterable[Span]) -> list[Span]:
    """`want` minus every span of `have`."""
    out: list[Span] = []
    cursor = want.start_ms
    for span in merge_spans(have):
        if span.end_ms <= cursor or span.start_ms >= want.end_ms:
            continue
        if span.start_ms > cursor:
            out.append(Span(start_ms=cursor, end_ms=span.start_ms))
        cursor = max(cursor, span.end_ms)
    if cursor < want.end_ms:
        out.append(Span(start_ms=cursor, end_ms=want.end_ms))
    return out


def find_gaps(series: CachedSeries) -> list[Gap]:
    """Every hole between the first covered time and the last: source gaps inside covered
    spans, and never-downloaded time between them."""
    step = series.step_ms
    times = [r[0] for r in series.rows]
    gaps: list[Gap] = []
    covered = series.meta.covered
    for prev, span in zip([None, *covered], covered, strict=False):
        if prev is not None:
            gaps.append(_gap(prev.end_ms, span.start_ms, step, "not_downloaded"))
        inside = [t for t in times if span.start_ms <= t < span.end_ms]
        expected = span.start_ms
        for t in inside:
            if t > expected:
                gaps.append(_gap(expected, t, step, "source"))
            expected = t + step
        if expected < span.end_ms:
            gaps.append(_gap(expected, span.end_ms, step, "source"))
    return [g for g in gaps if g.candles > 0]


def _gap(start: int, end: int, step: int, kind: Literal["source", "not_downloaded"]) -> Gap:
    return Gap(start_ms=start, end_ms=end, candles=-(-(end - start) // step), kind=kind)


def coverage(series: CachedSeries, path: Path) -> Coverage:
    meta = series.meta
    return Coverage(
        exchange=meta.exchange,
        symbol=meta.symbol,
        timeframe=meta.timeframe,
        path=path,
        candles=len(series.rows),
        first_ms=series.rows[0][0] if series.rows else None,
        last_ms=series.rows[-1][0] if series.rows else None,
        covered=list(meta.covered),
        gaps=find_gaps(series),
    )


# -- Parquet ------------------------------------------------------------------------------------


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("timestamp", pa.int64())] + [(name, pa.float64()) for name in COLUMNS[1:]])


def read_cache(path: Path) -> CachedSeries:
    """The series in `path`; InvalidMarketData names the file when it is not a Kestrel cache."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise InvalidMarketData(f"{path}: not a readable Parquet candle file: {exc}") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None or table.column_names != list(COLUMNS):
        raise InvalidMarketData(
            f"{path}: not a Kestrel candle cache (columns {table.column_names}); "
            "remove it or download again"
        )
    meta = CacheMeta.model_validate_json(raw)
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    rows: list[Row] = list(zip(*columns, strict=True))
    return CachedSeries(meta, rows)


def open_cache(path: Path, exchange: str, symbol: str, timeframe: str) -> CachedSeries:
    """The cached series, or an empty one when nothing was downloaded yet."""
    if not path.exists():
        return CachedSeries(CacheMeta(exchange=exchange, symbol=symbol, timeframe=timeframe), [])
    series = read_cache(path)
    if (series.meta.symbol, series.meta.timeframe) != (symbol, timeframe):
        raise InvalidMarketData(
            f"{path}: holds {series.meta.symbol} {series.meta.timeframe}, not {symbol} {timeframe}"
        )
    return series


def write_cache(path: Path, series: CachedSeries) -> None:
    """Atomically replace `path` with `series` (candles + covered spans)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: list[tuple[object, ...]] = (
        list(zip(*series.rows, strict=True)) if series.rows else [() for _ in COLUMNS]
    )
    schema = _schema().with_metadata({META_KEY: series.meta.model_dump_json().encode()})
    table = pa.Table.from_arrays(
        [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)],
        schema=schema,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def list_cache(data_dir: Path) -> list[Coverage]:
    """Coverage of every cached series under `data_dir`, sorted by exchange, symbol, tf."""
    root = data_dir / CACHE_DIR
    found: list[Coverage] = []
    if not root.is_dir():
        return found
    for path in sorted(root.glob(f"*/*{SUFFIX}")):
        found.append(coverage(read_cache(path), path))
    return sorted(found, key=lambda c: (c.exchange, c.symbol, timeframe_ms(c.timeframe)))


def read_parquet_candles(path: Path) -> list[Candle]:
    """Validated candles of a cache file, for replays: the same checks as a CSV replay."""
    series = read_cache(path)
    if not series.rows:
        raise InvalidMarketData(f"{path}: no candle rows")
    try:
        return series.candles()
    except ValueError as exc:
        raise InvalidMarketData(f"{path}: invalid candle: {exc}") from None
