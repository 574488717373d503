"""What an emulator is started with: markets (candles + Binance filters), accounts, fill rules.

These are the emulator's input boundary, so they are pydantic models: a wrong symbol, a negative
fee or a missing CSV fails at start with the field named, not mid-test with a KeyError.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from emulator.candles import INTERVAL_MS, CandleFeed

_SYMBOL = re.compile(r"^([A-Z0-9]{2,15})/([A-Z0-9]{2,10})$")
_USD_LIKE = {"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "EUR"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketConfig(_Model):
    """One spot market. Unset filters are derived from the data so a CSV alone is enough."""

    symbol: str = Field(description="ccxt unified spot symbol, e.g. BTC/USDT")
    candles: list[list[float | int | str]] | Path = Field(
        description="ccxt-shaped rows [ts_ms, o, h, l, c, v] or a CSV path (shared/data format)"
    )
    timeframe: str | None = Field(default=None, description="inferred from timestamps if unset")
    tick_size: Decimal | None = Field(default=None, gt=0, description="default from price size")
    step_size: Decimal = Field(default=Decimal("0.00001"), gt=0)
    min_qty: Decimal | None = Field(default=None, gt=0, description="default: step_size")
    max_qty: Decimal = Field(default=Decimal("9000000"), gt=0)
    min_price: Decimal | None = Field(default=None, gt=0, description="default: tick_size")
    max_price: Decimal = Field(default=Decimal("1000000"), gt=0)
    min_notional: Decimal | None = Field(default=None, ge=0, description="default by quote")
    max_notional: Decimal = Field(default=Decimal("9000000"), gt=0)
    order_types: list[str] | None = Field(
        default=None,
        description="order types the market takes (exchangeInfo orderTypes); default all of "
        "LIMIT, LIMIT_MAKER, MARKET, STOP_LOSS(_LIMIT), TAKE_PROFIT(_LIMIT)",
    )

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        if not _SYMBOL.match(value):
            raise ValueError("must be BASE/QUOTE in capitals, e.g. BTC/USDT")
        return value

    @field_validator("timeframe")
    @classmethod
    def _known_interval(cls, value: str | None) -> str | None:
        if value is not None and value not in INTERVAL_MS:
            raise ValueError(f"must be one of {', '.join(INTERVAL_MS)}")
        return value

    @field_validator("order_types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        from emulator.orders import ORDER_TYPES

        if value is None:
            return None
        unknown = [t for t in value if t not in ORDER_TYPES]
        if unknown or "MARKET" not in value or "LIMIT" not in value:
            raise ValueError(f"must be a subset of {ORDER_TYPES} with LIMIT and MARKET")
        return value

    @model_validator(mode="after")
    def _csv_exists(self) -> MarketConfig:
        if isinstance(self.candles, Path) and not self.candles.is_file():
            raise ValueError(f"candles CSV not found: {self.candles}")
        return self

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def market_id(self) -> str:
        return self.base + self.quote

    def load_feed(self) -> CandleFeed:
        if isinstance(self.candles, Path):
            return CandleFeed.from_csv(self.candles, self.timeframe)
        return CandleFeed.from_rows(self.candles, self.timeframe, where=self.symbol)


class AccountConfig(_Model):
    """An API key pair with its starting balances and fee rates (Binance default: 0.1%)."""

    api_key: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    balances: dict[str, Decimal] = Field(default_factory=dict)
    maker_fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)
    taker_fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)

    @field_validator("balances")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in value.items():
            if amount < 0:
                raise ValueError(f"balance of {asset} must be >= 0, got {amount}")
        return value


class FillPolicy(_Model):
    """How much of an order can fill per candle: the knob that produces partial fills.

    Caps apply to resting (limit / triggered stop-limit) orders and to the immediately
    marketable part of a limit order. Market orders fill completely unless
    `cap_market_orders`, in which case the part above the cap EXPIRES, as a Binance market
    order does when the book runs dry.
    """

    max_fill_qty_per_candle: Decimal | None = Field(
        default=None, gt=0, description="per order, base units per candle"
    )
    volume_share: Decimal | None = Field(
        default=None,
        gt=0,
        le=1,
        description="share of a candle's volume available to fill orders (shared by all orders)",
    )
    cap_market_orders: bool = False
    slippage_bps: Decimal = Field(
        default=Decimal("0"), ge=0, description="market fills: buys pay, sells receive, this much"
    )


DuplicateRule = Literal["binance", "always"]


def default_tick(reference_price: Decimal) -> Decimal:
    """About six significant digits, like Binance (BTC at 8000 USDT -> 0.01)."""
    exponent = max(math.floor(math.log10(reference_price)) - 5, -8)
    return Decimal(1).scaleb(exponent)


def default_min_notional(quote: str) -> Decimal:
    if quote in _USD_LIKE:
        return Decimal("5")
    if quote == "BTC":
        return Decimal("0.0001")
    if quote in {"ETH", "BNB"}:
        return Decimal("0.001")
    return Decimal("0")
