"""Spot positions: what we hold, what it cost, and the PnL it made."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from kestrel.models._base import KestrelModel, Money, utcnow


class PositionStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class Position(KestrelModel):
    """A long spot position: a pure function of the fills in `fills`, applied in that order
    (kestrel.books.ledger). `amount` is the coins held (a buy fee taken in the base asset is not
    held), `entry_cost` the quote paid for them (so that fee is in it), `avg_entry_price` the
    cost per coin held. PnL is gross of fees. `fees` lists every fee as charged, per currency;
    `fees_paid` counts each fee not already in the entry cost once, valued in quote at fill
    time (`fee_values` per currency; a third currency such as BNB at the rate recorded on its
    fill, or, with no rate, in `fees_unvalued` instead), so net PnL = realized - fees_paid."""

    position_id: str
    symbol: str
    status: PositionStatus = PositionStatus.OPEN
    amount: Money = Decimal("0")
    avg_entry_price: Money = Decimal("0")
    entry_cost: Money = Field(
        default=Decimal("0"),
        description="the quote paid for the coins held (a buy fee in base included); kept "
        "exactly, so a position sold in full realizes exactly proceeds - cost",
    )
    realized_pnl: Money = Decimal("0")
    fees_paid: Money = Field(
        default=Decimal("0"), description="the sum of fee_values: the fees counted, in quote"
    )
    fees: dict[str, Money] = Field(
        default_factory=dict, description="every fee of the fills, per currency as charged"
    )
    fee_values: dict[str, Money] = Field(
        default_factory=dict,
        description="the fees counted in fees_paid, per currency, valued in quote at fill "
        "time (a buy's fee in base is in the entry price instead)",
    )
    fees_unvalued: dict[str, Money] = Field(
        default_factory=dict,
        description="fees in a third currency that had no rate to the quote at fill time: "
        "charged, but not in fees_paid (so net PnL is overstated by them)",
    )
    last_price: Money | None = None
    stop_loss: Money | None = None
    take_profit: Money | None = None
    trailing_stop_pct: Money | None = Field(
        default=None,
        description="trailing distance as a fraction (0.02 = 2% below the high); None: not yet "
        "armed by the monitor, 0: off",
    )
    trailing_activation_pct: Money | None = Field(
        default=None, description="profit over the entry, as a fraction, at which trailing starts"
    )
    high_water_mark: Money | None = None
    dust: Money = Field(
        default=Decimal("0"),
        description="what was left when the position closed: below the market's minimum amount, "
        "so it cannot be sold (e.g. a buy fee taken in the base asset)",
    )
    fills: dict[str, Money] = Field(
        default_factory=dict,
        description="the fills applied (Fill.key), in order, each with the PnL it realized: "
        "a fill in here is never applied again, so any retry converges",
    )
    unsellable: str | None = Field(
        default=None,
        description="DUST: why the position monitor cannot sell what is held (below the market's "
        "minimum amount or notional at the last price); no exit is sent while it is set",
    )
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _fields_of_older_records(cls, data: object) -> object:
        """A position stored before fees were kept per currency had only fees_paid, in quote,
        and no entry_cost (amount x entry price)."""
        if not isinstance(data, dict):
            return data
        if "fee_values" not in data and data.get("fees_paid"):
            quote = str(data.get("symbol", "")).partition("/")[2]
            data = {
                **data,
                "fees": {quote: data["fees_paid"]},
                "fee_values": {quote: data["fees_paid"]},
            }
        if "entry_cost" not in data and data.get("amount") and data.get("avg_entry_price"):
            cost = Decimal(str(data["amount"])) * Decimal(str(data["avg_entry_price"]))
            data = {**data, "entry_cost": cost}
        return data

    @property
    def cost_basis(self) -> Decimal:
        return self.entry_cost

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        return price * self.amount - self.entry_cost
