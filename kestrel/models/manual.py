"""What a manual action asks for and what it answers: requests, previews, outcomes, errors.

A request is the exact action an operator asked for. Its `fingerprint` (a hash of its
canonical parameters, without the request id) is what a REAL-mode confirmation token is bound
to, and what a repeated request id is checked against.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kestrel.mode import TradingMode
from kestrel.models import KestrelModel, Money, Order, OrderType, Reason, Side
from kestrel.models.market import SYMBOL_PATTERN

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def canonical_decimal(value: Decimal | None) -> str | None:
    """'0.0100' and '0.01' are the same amount: compare and hash them the same way."""
    if value is None:
        return None
    normal = value.normalize()
    return format(normal, "f")


def _symbol(value: str) -> str:
    value = value.strip().upper()
    if not SYMBOL_PATTERN.match(value):
        raise ValueError("must be a spot symbol BASE/QUOTE, e.g. BTC/USDT")
    return value


class _Request(KestrelModel):
    request_id: str | None = Field(
        default=None,
        description="idempotency key: the same request id never places twice",
    )

    @field_validator("request_id")
    @classmethod
    def _request_id_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not REQUEST_ID_PATTERN.match(value):
            raise ValueError("must be 1-64 characters of letters, digits, _ . : - ")
        return value

    def params(self) -> dict[str, Any]:
        """The canonical parameters (no request id): what a token is bound to."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        payload = json.dumps(self.params(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> str:
        raise NotImplementedError


class PlaceOrderRequest(_Request):
    """Buy or sell `amount` of base (or spend/receive `amount` of quote) at market or limit."""

    kind: Literal["place"] = "place"
    symbol: str
    side: Side
    amount: Money = Field(gt=0)
    amount_in: Literal["base", "quote"] = "base"
    type: OrderType = OrderType.MARKET
    price: Money | None = Field(default=None, gt=0, description="limit price")
    stop_loss: Money | None = Field(default=None, gt=0)
    take_profit: Money | None = Field(default=None, gt=0)

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        return _symbol(value)

    @field_validator("type")
    @classmethod
    def _market_or_limit(cls, value: OrderType) -> OrderType:
        if value not in (OrderType.MARKET, OrderType.LIMIT):
            raise ValueError("manual orders are market or limit")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PlaceOrderRequest:
        if self.type is OrderType.LIMIT and self.price is None:
            raise ValueError("a limit order needs a price")
        if self.type is OrderType.MARKET and self.price is not None:
            raise ValueError("a market order takes no price (use type limit)")
        if self.side is Side.SELL and (self.stop_loss or self.take_profit):
            raise ValueError(
                "stop-loss / take-profit protect a long position: give them on the buy"
            )
        if self.stop_loss and self.take_profit and self.stop_loss >= self.take_profit:
            raise ValueError(
                f"stop_loss {self.stop_loss} must be below take_profit {self.take_profit}"
            )
        if self.price is not None:
            if self.stop_loss is not None and self.stop_loss >= self.price:
                raise ValueError(f"stop_loss {self.stop_loss} must be below the price {self.price}")
            if self.take_profit is not None and self.take_profit <= self.price:
                raise ValueError(
                    f"take_profit {self.take_profit} must be above the price {self.price}"
                )
        return self

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "symbol": self.symbol,
            "side": self.side.value,
            "amount": canonical_decimal(self.amount),
            "amount_in": self.amount_in,
            "type": self.type.value,
            "price": canonical_decimal(self.price),
            "stop_loss": canonical_decimal(self.stop_loss),
            "take_profit": canonical_decimal(self.take_profit),
        }

    def describe(self) -> str:
        unit = self.symbol.split("/")[0 if self.amount_in == "base" else 1]
        at = f" @ {self.price}" if self.price is not None else ""
        protect = "".join(
            f" {name} {value}"
            for name, value in (("SL", self.stop_loss), ("TP", self.take_profit))
            if value is not None
        )
        head = f"{self.type.value} {self.side.value} {self.amount} {unit} {self.symbol}"
        return f"{head}{at}{protect}"


class ClosePositionRequest(_Request):
    """Sell all (fraction 1) or part of the open position in `symbol` at market."""

    kind: Literal["close"] = "close"
    symbol: str
    fraction: Decimal | None = Field(default=None, gt=0, le=1)
    amount: Money | None = Field(default=None, gt=0, description="base amount to sell")

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        return _symbol(value)

    @model_validator(mode="after")
    def _one_size(self) -> ClosePositionRequest:
        if self.fraction is not None and self.amount is not None:
            raise ValueError("give a fraction or an amount to close, not both")
        return self

    def params(self) -> dict[str, Any]:
        fraction = None if self.amount is not None else (self.fraction or Decimal(1))
        return {
            "kind": self.kind,
            "symbol": self.symbol,
            "fraction": canonical_decimal(fraction),
            "amount": canonical_decimal(self.amount),
        }

    def describe(self) -> str:
        if self.amount is not None:
            return f"close {self.amount} of the {self.symbol} position at market"
        share = self.fraction or Decimal(1)
        if share == 1:
            return f"close the whole {self.symbol} position at market"
        return f"close {canonical_decimal(share * 100)}% of the {self.symbol} position at market"


class CloseAllRequest(_Request):
    """Close every open position at market."""

    kind: Literal["close_all"] = "close_all"

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return "close every open position at market"


class MoveLevelsRequest(_Request):
    """Move the stop-loss and/or take-profit of the open position in `symbol`, and/or set its
    trailing stop (distance 0 turns it off). Only what is given changes."""

    kind: Literal["move_levels"] = "move_levels"
    symbol: str
    stop_loss: Money | None = Field(default=None, gt=0)
    take_profit: Money | None = Field(default=None, gt=0)
    trailing_distance_pct: Decimal | None = Field(
        default=None, ge=0, lt=100, description="% below the high the stop trails; 0: off"
    )
    trailing_activation_pct: Decimal | None = Field(
        default=None, ge=0, le=1000, description="profit % at which trailing starts"
    )

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        return _symbol(value)

    @model_validator(mode="after")
    def _something(self) -> MoveLevelsRequest:
        if (self.stop_loss, self.take_profit, self.trailing_distance_pct) == (None, None, None):
            raise ValueError("give a stop-loss, a take-profit or a trailing distance to set")
        if self.trailing_activation_pct is not None and self.trailing_distance_pct is None:
            raise ValueError("a trailing activation needs a trailing distance")
        return self

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "symbol": self.symbol,
            "stop_loss": canonical_decimal(self.stop_loss),
            "take_profit": canonical_decimal(self.take_profit),
            "trailing_distance_pct": canonical_decimal(self.trailing_distance_pct),
            "trailing_activation_pct": canonical_decimal(self.trailing_activation_pct),
        }

    def describe(self) -> str:
        parts = [
            f"{name} {canonical_decimal(value)}"
            for name, value in (("stop-loss", self.stop_loss), ("take-profit", self.take_profit))
            if value is not None
        ]
        if self.trailing_distance_pct == 0:
            parts.append("trailing off")
        elif self.trailing_distance_pct is not None:
            start = canonical_decimal(self.trailing_activation_pct or Decimal(0))
            parts.append(
                f"trailing {canonical_decimal(self.trailing_distance_pct)}% from +{start}%"
            )
        return f"move the {self.symbol} position's levels: {', '.join(parts)}"


AnyRequest = PlaceOrderRequest | ClosePositionRequest | CloseAllRequest | MoveLevelsRequest
ManualRequest = Annotated[AnyRequest, Field(discriminator="kind")]


class OutcomeStatus(StrEnum):
    PREVIEW = "PREVIEW"  # dry run: nothing placed, no token
    NEEDS_CONFIRMATION = "NEEDS_CONFIRMATION"  # REAL: a preview and a token; nothing placed
    BLOCKED = "BLOCKED"  # risk said no; nothing placed
    PLACED = "PLACED"  # sent through the order path (see each order's status)
    ALREADY_DONE = "ALREADY_DONE"  # this request id ran before; its orders, nothing new
    NOTHING_TO_DO = "NOTHING_TO_DO"  # e.g. close-all with no open position
    APPLIED = "APPLIED"  # a change to an open position made (its levels moved)


class LegPreview(KestrelModel):
    """One order of a manual action as it would be placed, with its verdict."""

    symbol: str
    side: Side
    type: OrderType
    amount: Money
    price: Money = Field(description="reference price: limit price, else the last price")
    last_price: Money
    notional: Money
    fee_rate: Money
    estimated_fee: Money
    fee_currency: str
    quote_delta: Money = Field(description="quote spent (negative) or received, fee included")
    position_before: Money
    position_after: Money
    exposure_after: Money = Field(description="position after x price, in quote")
    exposure_after_usd: Money | None = None
    open_positions_after: int
    stop_loss: Money | None = None
    take_profit: Money | None = None
    approved: bool
    reasons: list[Reason]
    warnings: list[str] = Field(default_factory=list)
    client_order_id: str | None = None
    position_id: str | None = None


class ManualOutcome(KestrelModel):
    status: OutcomeStatus
    mode: TradingMode
    action: str
    request_id: str
    legs: list[LegPreview] = Field(default_factory=list)
    orders: list[Order] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    token: str | None = None
    expires_at: datetime | None = None
    message: str = ""

    @property
    def approved(self) -> bool:
        return bool(self.legs) and all(leg.approved for leg in self.legs)


class CancelOutcome(KestrelModel):
    client_order_id: str
    symbol: str
    canceled: bool
    order: Order
    message: str


class ResetOutcome(KestrelModel):
    archive_key: str
    balances: dict[str, Money]
    previous_balances: dict[str, Money]
    orders_canceled: list[str]
    positions_closed: list[str]
    event_id: str
