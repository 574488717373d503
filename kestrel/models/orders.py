"""Orders and fills, in ccxt's vocabulary plus what a bot must remember to survive restarts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from kestrel.errors import InvalidTransition
from kestrel.mode import TradingMode
from kestrel.models._base import KestrelModel, Money, utcnow


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"


class OrderRole(StrEnum):
    PRIMARY = "PRIMARY"
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    EXIT = "EXIT"


class OrderStatus(StrEnum):
    NEW = "NEW"  # intent stored, exchange not yet asked (or answer not yet seen)
    # Sent, but past the grace the exchange still shows nothing under our client order id:
    # it may yet appear (a slow or lost send), so it is live, never resent, and sync keeps
    # asking; an alert says so once.
    UNKNOWN = "UNKNOWN"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


class StatusSource(StrEnum):
    """Which piece of exchange truth set the status; an order is only final on confirmation."""

    INTENT = "intent"
    CREATE_RESPONSE = "create_response"
    OPEN_ORDERS = "open_orders"
    ORDER_HISTORY = "order_history"
    TRADE_HISTORY = "trade_history"
    CANCEL_RESPONSE = "cancel_response"
    PRE_CHECK = "pre_check"
    SYNC_GRACE = "sync_grace"  # order sync gave up waiting (FAILED if never sent, else UNKNOWN)
    SUPERSEDED = "superseded"  # an unsent intent replaced by a newer one (never on the exchange)
    PAPER_RESET = "paper_reset"  # closed by an operator's paper-account reset, not the exchange
    WRITTEN_OFF = "written_off"  # an UNKNOWN order the operator verified by hand is not there


FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.FAILED}
)
LIVE_STATUSES = frozenset(
    {OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED}
)
_EXCHANGE_OUTCOMES = frozenset(
    {
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
    }
)

_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: _EXCHANGE_OUTCOMES | {OrderStatus.UNKNOWN, OrderStatus.FAILED},
    # Only the exchange's word ends an UNKNOWN order: it may be on the exchange.
    OrderStatus.UNKNOWN: _EXCHANGE_OUTCOMES,
    OrderStatus.OPEN: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED}
    ),
}


def check_transition(
    current: OrderStatus, new: OrderStatus, source: StatusSource | None = None
) -> None:
    """Raise unless the lifecycle allows current -> new (same status is a no-op, allowed).
    The one step not on the exchange's word: an operator's write-off of an UNKNOWN order
    (kestrel.manual.write_off), allowed only with that source."""
    if current == new:
        return
    if (current, new, source) == (
        OrderStatus.UNKNOWN,
        OrderStatus.FAILED,
        StatusSource.WRITTEN_OFF,
    ):
        return
    if new not in _ALLOWED.get(current, frozenset()):
        raise InvalidTransition(f"order status cannot go from {current} to {new}")


class Order(KestrelModel):
    client_order_id: str = Field(min_length=1, max_length=36)
    exchange_order_id: str | None = None
    mode: TradingMode
    exchange: str
    symbol: str
    side: Side
    type: OrderType
    role: OrderRole = OrderRole.PRIMARY
    amount: Money = Field(gt=0)
    price: Money | None = Field(default=None, gt=0)
    stop_price: Money | None = Field(default=None, gt=0)
    status: OrderStatus = OrderStatus.NEW
    status_source: StatusSource = StatusSource.INTENT
    filled: Money = Decimal("0")
    average_price: Money | None = None
    fee_cost: Money = Decimal("0")
    fee_currency: str | None = None
    fees: dict[str, Money] = Field(
        default_factory=dict,
        description="every fee of the order's fills, per currency as the exchange charged it; "
        "fee_cost/fee_currency are the part in the first fill's currency",
    )
    stop_loss: Money | None = Field(default=None, description="protective level for the position")
    take_profit: Money | None = Field(default=None, description="target for the position")
    cycle_id: str | None = None
    parent_client_order_id: str | None = None
    reason: str | None = None
    position_id: str | None = Field(
        default=None, description="the position a protective or exit order belongs to"
    )
    reference_price: Money | None = Field(
        default=None, gt=0, description="expected price of a market order (min-notional check)"
    )
    send_attempts: int = Field(
        default=0, ge=0, description="create requests sent; >0 means it may be on the exchange"
    )
    last_sent_at: datetime | None = None
    cancel_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _fees_from_single_fee(cls, data: object) -> object:
        """An order stored before fees were kept per currency had only fee_cost in
        fee_currency: that is its one fee in `fees`, so every reader uses `fees` alone."""
        if isinstance(data, dict) and not data.get("fees"):
            cost = Decimal(str(data.get("fee_cost") or 0))
            if cost != 0 and data.get("fee_currency"):
                data = {**data, "fees": {str(data["fee_currency"]): cost}}
        return data

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def may_be_on_exchange(self) -> bool:
        """False only for an intent never sent: nothing of it can be on the exchange."""
        return self.status is not OrderStatus.NEW or self.send_attempts > 0


class Fill(KestrelModel):
    """One trade against one order (ccxt's myTrades entry). trade_id is unique per exchange."""

    trade_id: str
    client_order_id: str
    exchange_order_id: str | None = None
    symbol: str
    side: Side
    amount: Money = Field(gt=0)
    price: Money = Field(gt=0)
    fee_cost: Money = Decimal("0")
    fee_currency: str
    fees: dict[str, Money] = Field(
        default_factory=dict,
        description="every fee of this trade per currency, as the exchange charged it (ccxt's "
        "`fees`); when not given, the single fee_cost in fee_currency",
    )
    fee_rates: dict[str, Money] = Field(
        default_factory=dict,
        description="quote currency per unit of a fee currency that is neither base nor quote "
        "(e.g. BNB), as known at fill time: the rate its fee is valued at for PnL",
    )
    taker_or_maker: str = "taker"
    timestamp: int

    @model_validator(mode="before")
    @classmethod
    def _fees_from_single_fee(cls, data: object) -> object:
        """A fill given one fee (fee_cost, fee_currency) has that one fee in `fees`, so every
        reader uses `fees` alone (older stored fills have no `fees`)."""
        if isinstance(data, dict) and not data.get("fees"):
            cost = Decimal(str(data.get("fee_cost") or 0))
            if cost != 0 and data.get("fee_currency"):
                data = {**data, "fees": {str(data["fee_currency"]): cost}}
        return data

    @property
    def key(self) -> str:
        """Identifies the fill in the books (the store keeps one per order and trade id)."""
        return f"{self.client_order_id}/{self.trade_id}"

    @property
    def cost(self) -> Decimal:
        return self.amount * self.price
