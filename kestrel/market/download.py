"""Downloading candles into the Parquet cache (kestrel/market/cache.py) through ccxt.

Why it is built this way:
- paginated with `fetch_ohlcv(symbol, tf, since, limit)`, because exchanges serve at most a
  page (Binance: 1000) per request;
- rate limited by ccxt itself (`enableRateLimit`), the limiter that knows each exchange's rules;
- resumable: each page is merged into the series and the file is saved every few pages and
  when the run stops for any reason, so a second run asks only for time never covered;
- only CLOSED candles are stored (open time + timeframe <= now): the exchange's forming candle
  would be a price nobody will ever see again;
- gaps in the exchange's data are kept as gaps (the covered span records that we asked).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kestrel.errors import ConfigError, ExchangeError, InvalidMarketData, KestrelError
from kestrel.market.cache import CachedSeries, Row, Span, cache_path, open_cache, write_cache
from kestrel.models import Candle, timeframe_ms

PAGE_LIMIT = 1000
FLUSH_EVERY = 10  # pages between saves: bounds the work an interruption can lose

Clock = Callable[[], int]
Progress = Callable[[str, int], None]


class DownloadInterrupted(KestrelError):
    """The exchange failed mid-download; what arrived is saved and a rerun resumes."""


def parse_time(text: str, option: str) -> int:
    """Epoch ms from `2024-01-01`, `2024-01-01T12:00[:00][Z|+00:00]` or an integer of ms.

    A naive date or time is UTC (candle times are UTC everywhere in Kestrel).
    """
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option}: {text!r} is not a date; use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch ms"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class DownloadRequest(BaseModel):
    """What to download; invalid combinations fail here, before any request is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: str = Field(min_length=1)
    symbols: list[str] = Field(min_length=1)
    timeframe: str
    since_ms: int = Field(ge=0)
    until_ms: int | None = None

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        timeframe_ms(value)  # ValueError names the allowed ones
        return value

    @field_validator("symbols")
    @classmethod
    def _symbol_shape(cls, value: list[str]) -> list[str]:
        for symbol in value:
            if symbol.count("/") != 1 or not all(symbol.split("/")):
                raise ValueError(f"symbol {symbol!r} must look like BASE/QUOTE, e.g. BTC/USDT")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _ordered(self) -> DownloadRequest:
        if self.until_ms is not None and self.until_ms <= self.since_ms:
            raise ValueError(
                f"--since ({_iso(self.since_ms)}) must be before --until ({_iso(self.until_ms)})"
            )
        return self

    @classmethod
    def parse(
        cls,
        exchange: str,
        symbols: list[str],
        timeframe: str,
        since: str,
        until: str | None = None,
    ) -> DownloadRequest:
        """From CLI text; ConfigError names the option to fix."""
        since_ms = parse_time(since, "--since")
        until_ms = parse_time(until, "--until") if until else None
        try:
            return cls(
                exchange=exchange,
                symbols=symbols,
                timeframe=timeframe,
                since_ms=since_ms,
                until_ms=until_ms,
            )
        except ValidationError as exc:
            raise ConfigError("; ".join(_plain(e) for e in exc.errors())) from None


def _plain(error: Any) -> str:
    where = ".".join(map(str, error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


class SymbolReport(BaseModel):
    """What one symbol's download did."""

    symbol: str
    path: Path
    requests: int
    new_candles: int
    total_candles: int
    fetched: list[Span]


def closed_end(now_ms: int, step: int) -> int:
    """Exclusive open-time bound of the candles closed at `now_ms`."""
    return now_ms // step * step


def wanted_span(request: DownloadRequest, now_ms: int) -> Span:
    """[since, until) aligned to candle boundaries and cut at the last closed candle."""
    step = timeframe_ms(request.timeframe)
    start = -(-request.since_ms // step) * step
    end = closed_end(now_ms, step)
    if request.until_ms is not None:
        end = min(end, -(-request.until_ms // step) * step)
    return Span(start_ms=start, end_ms=max(start, end))


class Downloader:
    """Fills the cache for one request from one ccxt client."""

    def __init__(
        self,
        client: Any,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        page_limit: int = PAGE_LIMIT,
        flush_every: int = FLUSH_EVERY,
        progress: Progress | None = None,
    ) -> None:
        """`clock`: market "now" in epoch ms (default: the client's clock, i.e. wall time)."""
        self.client = client
        self.data_dir = data_dir
        self.clock: Clock = clock or client.milliseconds
        self.page_limit = page_limit
        self.flush_every = flush_every
        self.progress = progress

    def run(self, request: DownloadRequest) -> list[SymbolReport]:
        self._check_exchange(request)
        return [self._symbol(request, symbol) for symbol in request.symbols]

    def _check_exchange(self, request: DownloadRequest) -> None:
        timeframes = getattr(self.client, "timeframes", None) or {}
        if timeframes and request.timeframe not in timeframes:
            raise ConfigError(
                f"--timeframe: {request.exchange} has no {request.timeframe!r} candles; "
                f"it serves {', '.join(timeframes)}"
            )
        markets = self._call("load markets", self.client.load_markets)
        unknown = [s for s in request.symbols if s not in markets]
        if unknown:
            raise ConfigError(f"--symbols: {request.exchange} lists no {', '.join(unknown)}")

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        import ccxt

        try:
            return fn(*args)
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{self.client.id}: {what}: {type(exc).__name__}: {exc}") from exc

    def _symbol(self, request: DownloadRequest, symbol: str) -> SymbolReport:
        path = cache_path(self.data_dir, request.exchange, symbol, request.timeframe)
        series = open_cache(path, request.exchange, symbol, request.timeframe)
        before = len(series.rows)
        todo = series.missing(wanted_span(request, self.clock()))
        requests = 0
        try:
            for span in todo:
                requests += self._fetch_span(series, path, symbol, span)
        except ExchangeError as exc:
            write_cache(path, series)
            raise DownloadInterrupted(
                f"{symbol} {request.timeframe}: {exc}; {len(series.rows) - before} new candles "
                f"saved to {path}; run the same command again to resume"
            ) from exc
        except BaseException:
            write_cache(path, series)  # Ctrl-C keeps what arrived
            raise
        write_cache(path, series)
        return SymbolReport(
            symbol=symbol,
            path=path,
            requests=requests,
            new_candles=len(series.rows) - before,
            total_candles=len(series.rows),
            fetched=todo,
        )

    def _fetch_span(self, series: CachedSeries, path: Path, symbol: str, span: Span) -> int:
        """Pages over `span`, merging each into `series`; returns the requests made."""
        step, tf = series.step_ms, series.meta.timeframe
        cursor, requests = span.start_ms, 0
        while cursor < span.end_ms:
            raw = self._call(
                f"fetch_ohlcv {symbol} {tf}",
                self.client.fetch_ohlcv,
                symbol,
                tf,
                cursor,
                self.page_limit,
            )
            requests += 1
            rows = [r for r in _rows(raw, symbol, tf) if r[0] >= cursor]
            inside = [r for r in rows if r[0] < span.end_ms]
            # Nothing new, or the page reached past the span: the exchange has answered for
            # all of it. Otherwise it answered up to its last candle (page sizes differ by
            # exchange, so a short page is not taken to mean "no more data").
            done = not inside or len(inside) < len(rows)
            covered_to = span.end_ms if done else inside[-1][0] + step
            series.add(inside, Span(start_ms=cursor, end_ms=covered_to))
            if self.progress is not None:
                self.progress(symbol, len(inside))
            if requests % self.flush_every == 0:
                write_cache(path, series)
            cursor = covered_to
        return requests


def _rows(raw: list[list[Any]], symbol: str, timeframe: str) -> list[Row]:
    """Validated, time-ordered rows; a bad candle from the exchange is an error, not a skip."""
    rows: list[Row] = []
    for item in raw:
        try:
            c = Candle.from_ccxt(item)
        except (ValidationError, InvalidMarketData) as exc:
            raise InvalidMarketData(
                f"{symbol} {timeframe}: the exchange sent an invalid candle {item!r}: {exc}"
            ) from None
        rows.append((c.timestamp, c.open, c.high, c.low, c.close, c.volume))
    rows.sort()
    return rows


def download(
    request: DownloadRequest,
    data_dir: Path,
    client: Any,
    *,
    clock: Clock | None = None,
    page_limit: int = PAGE_LIMIT,
    progress: Progress | None = None,
) -> list[SymbolReport]:
    """Download `request` into the cache under `data_dir`; see `Downloader`."""
    return Downloader(client, data_dir, clock=clock, page_limit=page_limit, progress=progress).run(
        request
    )
