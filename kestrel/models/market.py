"""Market data and market rules: candles, tickers, and a market's precision and minimums."""

from __future__ import annotations

import math
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from kestrel.errors import InvalidMarketData
from kestrel.models._base import KestrelModel, Money

TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "12h": 43200,
    "1d": 86400,
}


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_SECONDS[timeframe] * 1000
    except KeyError as exc:
        allowed = ", ".join(TIMEFRAME_SECONDS)
        raise ValueError(f"unknown timeframe {timeframe!r}; allowed: {allowed}") from exc


class Candle(KestrelModel):
    """One OHLCV candle; `timestamp` is the UTC open time in epoch milliseconds (ccxt's shape)."""

    timestamp: int = Field(ge=0)
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(ge=0)

    @field_validator("open", "high", "low", "close", "volume")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number (NaN/inf candles are rejected)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Candle:
        if self.low <= 0:
            raise ValueError(f"low must be > 0, got {self.low}")
        if self.high < max(self.open, self.close, self.low) or self.low > min(
            self.open, self.close
        ):
            raise ValueError(
                f"inconsistent candle at {self.timestamp}: high={self.high} low={self.low} "
                f"open={self.open} close={self.close}"
            )
        return self

    @classmethod
    def from_ccxt(cls, row: list[float] | tuple[float, ...]) -> Candle:
        if len(row) < 6:
            raise InvalidMarketData(f"an OHLCV row needs 6 values [ts,o,h,l,c,v], got {row!r}")
        ts, o, h, low, c, v = row[:6]
        return cls(timestamp=int(ts), open=o, high=h, low=low, close=c, volume=v)


class CandleSeries(KestrelModel):
    """Candles of one symbol and timeframe, strictly increasing in time."""

    symbol: str
    timeframe: str
    candles: list[Candle]
    source: str = Field(
        description="where they came from: ccxt:<exchange>, replay:<file>, simulated"
    )

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        timeframe_ms(value)
        return value

    @model_validator(mode="after")
    def _increasing(self) -> CandleSeries:
        for prev, cur in zip(self.candles, self.candles[1:], strict=False):
            if cur.timestamp <= prev.timestamp:
                raise ValueError(
                    f"{self.symbol} candles must increase in time: "
                    f"{cur.timestamp} after {prev.timestamp}"
                )
        return self

    @property
    def last(self) -> Candle | None:
        return self.candles[-1] if self.candles else None


class Ticker(KestrelModel):
    symbol: str
    timestamp: int
    last: Money
    bid: Money | None = None
    ask: Money | None = None


class MarketSpec(KestrelModel):
    """A market's trading rules in ccxt's vocabulary (precision as tick sizes, limits, fees)."""

    symbol: str
    base: str
    quote: str
    amount_step: Money = Field(
        gt=0, description="smallest amount increment (ccxt precision.amount)"
    )
    price_tick: Money = Field(gt=0, description="smallest price increment (ccxt precision.price)")
    min_amount: Money = Decimal("0")
    min_notional: Money = Decimal("0")
    maker_fee: Money = Decimal("0.001")
    taker_fee: Money = Decimal("0.001")

    @classmethod
    def from_ccxt(cls, market: dict[str, object]) -> MarketSpec:
        """Build from a ccxt market dict (ccxt uses TICK_SIZE precision mode for Binance)."""
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        assert isinstance(precision, dict) and isinstance(limits, dict)
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}

        def dec(value: object, default: str) -> Decimal:
            return Decimal(str(value)) if value is not None else Decimal(default)

        return cls(
            symbol=str(market["symbol"]),
            base=str(market["base"]),
            quote=str(market["quote"]),
            amount_step=dec(precision.get("amount"), "0.00000001"),
            price_tick=dec(precision.get("price"), "0.00000001"),
            min_amount=dec(amount_limits.get("min"), "0"),
            min_notional=dec(cost_limits.get("min"), "0"),
            maker_fee=dec(market.get("maker"), "0.001"),
            taker_fee=dec(market.get("taker"), "0.001"),
        )
