"""Market data and market rules: candles, tickers, and a market's precision and minimums."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from enum import StrEnum

from pydantic import AliasChoices, Field, field_validator, model_validator

from kestrel.errors import InvalidMarketData
from kestrel.models._base import KestrelModel, Money
from kestrel.money import PrecisionMode, Rounding, step_at, to_precision

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

# A unified ccxt spot symbol as Kestrel accepts it (BASE/QUOTE, upper case).
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,10}$")


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


class SizeProblemCode(StrEnum):
    """Why an order is too small for its market (the same names as the ReasonCodes)."""

    BELOW_MIN_AMOUNT = "BELOW_MIN_AMOUNT"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"


class SizeProblem(KestrelModel):
    """An order the exchange would refuse for its size: a machine-readable code, a sentence
    for people, and the figures behind it."""

    code: SizeProblemCode
    detail: str
    values: dict[str, str]


class MarketSpec(KestrelModel):
    """A market's trading rules in ccxt's vocabulary: precision as ccxt reports it (read in
    the exchange's precisionMode), limits and fees.

    It is the one place that rounds an order onto the market's grid (`amount_to_precision`,
    `limit_price`, `stop_price`, ...) and the one place that says whether an order is big
    enough (`size_problem`, `is_dust`): the risk rules, placement, the paper exchange, the
    monitor, protection, the ledger and manual trading all ask it."""

    symbol: str
    base: str
    quote: str
    precision_mode: PrecisionMode = Field(
        default=PrecisionMode.TICK_SIZE, description="ccxt exchange.precisionMode"
    )
    amount_precision: Money = Field(
        validation_alias=AliasChoices("amount_precision", "amount_step"),
        description="ccxt precision.amount: a step (TICK_SIZE) or a number of digits",
    )
    price_precision: Money = Field(
        validation_alias=AliasChoices("price_precision", "price_tick"),
        description="ccxt precision.price: a tick (TICK_SIZE) or a number of digits",
    )
    cost_precision: Money | None = Field(
        default=None, description="ccxt precision.cost; prices' precision when absent"
    )
    min_amount: Money = Decimal("0")
    min_notional: Money = Decimal("0")
    maker_fee: Money = Decimal("0.001")
    taker_fee: Money = Decimal("0.001")

    @model_validator(mode="after")
    def _precision_fits_the_mode(self) -> MarketSpec:
        """A tick is > 0; digits are whole (decimal places may be 0 or negative: whole units,
        tens; significant digits at least 1), as ccxt's decimal_to_precision requires."""
        mode = self.precision_mode
        for name in ("amount_precision", "price_precision", "cost_precision"):
            value = getattr(self, name)
            if value is None:
                continue
            if mode is PrecisionMode.TICK_SIZE:
                problem = None if value > 0 else "must be > 0"
            elif value != value.to_integral_value():
                problem = "must be a whole number of digits"
            elif mode is PrecisionMode.SIGNIFICANT_DIGITS and value < 1:
                problem = "must be at least 1 significant digit"
            else:
                problem = None
            if problem is not None:
                raise ValueError(f"{self.symbol}: {name} {value} {problem} in {mode.name} mode")
        return self

    @classmethod
    def from_ccxt(cls, market: dict[str, object], precision_mode: int) -> MarketSpec:
        """Build from a ccxt market dict and the exchange's `precisionMode`: the same
        precision number means a tick (Binance: 0.01) or a digit count (2) depending on it."""
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        assert isinstance(precision, dict) and isinstance(limits, dict)
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        mode = PrecisionMode(precision_mode)
        finest = "0.00000001" if mode is PrecisionMode.TICK_SIZE else "8"

        def dec(value: object, default: str) -> Decimal:
            return Decimal(str(value)) if value is not None else Decimal(default)

        cost = precision.get("cost")
        return cls(
            symbol=str(market["symbol"]),
            base=str(market["base"]),
            quote=str(market["quote"]),
            precision_mode=mode,
            amount_precision=dec(precision.get("amount"), finest),
            price_precision=dec(precision.get("price"), finest),
            cost_precision=dec(cost, finest) if cost is not None else None,
            min_amount=dec(amount_limits.get("min"), "0"),
            min_notional=dec(cost_limits.get("min"), "0"),
            maker_fee=dec(market.get("maker"), "0.001"),
            taker_fee=dec(market.get("taker"), "0.001"),
        )

    # -- precision: every rounding names its direction -----------------------------------------

    def amount_to_precision(self, amount: Decimal) -> Decimal:
        """Amounts truncate (as ccxt's amount_to_precision): never more than we can pay for
        or than we hold."""
        return to_precision(amount, self.amount_precision, self.precision_mode, Rounding.DOWN)

    def price_to_precision(self, price: Decimal, rounding: Rounding) -> Decimal:
        return to_precision(price, self.price_precision, self.precision_mode, rounding)

    def cost_to_precision(self, cost: Decimal) -> Decimal:
        """Quote amounts (a market buy by cost) truncate, with ccxt's cost-else-price digits."""
        digits = self.cost_precision or self.price_precision
        return to_precision(cost, digits, self.precision_mode, Rounding.DOWN)

    def limit_price(self, side: str, price: Decimal) -> Decimal:
        """A limit never trades worse than asked: a buy rounds down, a sell up."""
        rounding = Rounding.DOWN if side == "buy" else Rounding.UP
        return self.price_to_precision(price, rounding)

    def stop_price(self, side: str, price: Decimal) -> Decimal:
        """A stop rounds toward the market, so it never loses more than planned: a sell stop
        (under a long) rounds up, a buy stop (over a short) down. The cost is triggering at
        most one step early; a stop within a step of the price is refused by the callers'
        own "stop below the price" checks rather than widened."""
        rounding = Rounding.UP if side == "sell" else Rounding.DOWN
        return self.price_to_precision(price, rounding)

    @property
    def amount_step(self) -> Decimal:
        """The fixed amount grid, for code that needs a step (e.g. the paper exchange)."""
        return self._fixed_step(self.amount_precision, "amount")

    @property
    def price_tick(self) -> Decimal:
        """The fixed price grid, for code that needs a tick (e.g. paper slippage)."""
        return self._fixed_step(self.price_precision, "price")

    def _fixed_step(self, precision: Decimal, what: str) -> Decimal:
        if self.precision_mode is PrecisionMode.SIGNIFICANT_DIGITS:
            raise ValueError(
                f"{self.symbol} counts {what} precision in significant digits: there is no "
                f"fixed step; use MarketSpec.{what}_to_precision"
            )
        return step_at(Decimal(0), precision, self.precision_mode)

    # -- size: the one rule for "is this order big enough for the market" ----------------------

    def size_problem(self, amount: Decimal, price: Decimal) -> SizeProblem | None:
        """Why the exchange would refuse `amount` at `price` for its size, or None.

        The amount is judged as it would be sent, truncated to precision; the notional at
        `price` (the limit, the stop, or the last price for a market order)."""
        sent = self.amount_to_precision(amount)
        if sent <= 0 or sent < self.min_amount:
            return SizeProblem(
                code=SizeProblemCode.BELOW_MIN_AMOUNT,
                detail=f"{self.symbol}: amount {amount} rounds down to {sent} (precision "
                f"{self.amount_precision}, {self.precision_mode.name}); the market's minimum "
                f"amount is {self.min_amount} {self.base}",
                values={
                    "amount": str(amount),
                    "rounded": str(sent),
                    "min_amount": str(self.min_amount),
                    "amount_precision": str(self.amount_precision),
                },
            )
        notional = sent * price
        if notional < self.min_notional:
            return SizeProblem(
                code=SizeProblemCode.BELOW_MIN_NOTIONAL,
                detail=f"{self.symbol}: order value {notional} {self.quote} ({sent} x {price}) "
                f"is below the market's minimum notional {self.min_notional} {self.quote}",
                values={
                    "amount": str(sent),
                    "price": str(price),
                    "notional": str(notional),
                    "min_notional": str(self.min_notional),
                },
            )
        return None

    def is_dust(self, amount: Decimal, price: Decimal) -> bool:
        """Too small to sell on its own at `price`: a remainder below the market's minimums."""
        return self.size_problem(amount, price) is not None

    def is_tradable(self, amount: Decimal, price: Decimal) -> bool:
        return self.size_problem(amount, price) is None
