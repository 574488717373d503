"""Live public candles from a ccxt exchange (no API keys), closed candles only.

Every request carries ccxt's `timeout`, and ccxt's exceptions are translated at this edge:
ccxt's OperationFailed family - NetworkError (RequestTimeout, DDoSProtection/RateLimitExceeded,
ExchangeNotAvailable, ...) plus BadResponse and Binance's -1001 "internal error" - becomes
TransientExchangeError so callers retry with backoff (safe: reading candles has no side
effect); anything else (BadSymbol, authentication, ...) is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ccxt
from pydantic import ValidationError

from kestrel.errors import ExchangeError, InvalidMarketData, TransientExchangeError
from kestrel.market.base import DEFAULT_LIMIT, FeedKind
from kestrel.models import Candle, CandleSeries, timeframe_ms

PAGE = 1000  # Binance's kline page size
MAX_PAGES = 10  # per candles_between call; matching catches up over later calls


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def make_exchange(exchange_id: str, timeout_s: float, config: dict[str, Any] | None = None) -> Any:
    """A public (keyless) ccxt client with a request timeout and ccxt's rate limiter on."""
    try:
        exchange_class = getattr(ccxt, exchange_id)
    except AttributeError:
        raise ExchangeError(f"ccxt has no exchange {exchange_id!r}") from None
    options: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000)}
    options.update(config or {})
    return exchange_class(options)


def translate(label: str, exc: Exception) -> Exception:
    """A ccxt exception as Kestrel's transient/final split; anything else unchanged."""
    if isinstance(exc, ccxt.OperationFailed):
        return TransientExchangeError(f"{label}: {type(exc).__name__}: {exc}")
    if isinstance(exc, ccxt.BaseError):
        return ExchangeError(f"{label}: {type(exc).__name__}: {exc}")
    return exc


class CcxtLiveFeed:
    """Candles from a live exchange; "now" is the wall clock (injectable for tests)."""

    kind: FeedKind = "live"

    def __init__(
        self,
        exchange: Any = "binance",
        *,
        timeout_s: float = 10.0,
        match_timeframe: str = "1m",
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        """`exchange`: a ccxt id or a ccxt instance (its `timeout` is set to `timeout_s`)."""
        if isinstance(exchange, str):
            exchange = make_exchange(exchange, timeout_s)
        else:
            exchange.timeout = int(timeout_s * 1000)
        self.exchange = exchange
        self.match_timeframe = match_timeframe
        self._clock = clock
        self.label = f"ccxt:{exchange.id}"

    def _call[T](self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception as exc:
            translated = translate(self.label, exc)
            if translated is exc:
                raise
            raise translated from exc

    def _rows_to_candles(self, symbol: str, timeframe: str, rows: list[list[Any]]) -> list[Candle]:
        try:
            return [Candle.from_ccxt(row) for row in rows]
        except ValidationError as exc:
            raise InvalidMarketData(
                f"{self.label} {symbol} {timeframe}: invalid candle: {exc.errors()[0]['msg']}"
            ) from None

    def _closed(self, candles: list[Candle], timeframe: str) -> list[Candle]:
        now, period = self._clock(), timeframe_ms(timeframe)
        return [c for c in candles if c.timestamp + period <= now]

    def now_ms(self, symbol: str) -> int:
        return self._clock()

    def candles(
        self, symbol: str, timeframe: str, limit: int | None = DEFAULT_LIMIT
    ) -> CandleSeries:
        # One extra row: the exchange's last row is usually the candle still forming.
        fetch_limit = None if limit is None else limit + 1
        rows = self._call(self.exchange.fetch_ohlcv, symbol, timeframe, None, fetch_limit)
        closed = self._closed(self._rows_to_candles(symbol, timeframe, rows), timeframe)
        if limit is not None:
            closed = closed[-limit:]
        return CandleSeries(symbol=symbol, timeframe=timeframe, candles=closed, source=self.label)

    def candles_between(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Closed `match_timeframe` candles in [start_ms, end_ms), a bounded number of pages."""
        out: list[Candle] = []
        since = start_ms
        for _ in range(MAX_PAGES):
            rows = self._call(self.exchange.fetch_ohlcv, symbol, self.match_timeframe, since, PAGE)
            page = self._closed(
                self._rows_to_candles(symbol, self.match_timeframe, rows), self.match_timeframe
            )
            page = [c for c in page if since <= c.timestamp < end_ms]
            if not page:
                break
            out.extend(page)
            since = page[-1].timestamp + 1
            if len(rows) < PAGE:
                break
        return out

    def advance(self, steps: int = 1) -> None:
        """Live time moves by itself."""

    @property
    def exhausted(self) -> bool:
        return False
