"""Spot positions: what we hold, what it cost, and the PnL it made."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from kestrel.models._base import KestrelModel, Money, utcnow


class PositionStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class Position(KestrelModel):
    """A long spot position. PnL is gross of fees; fees are summed separately so that
    start balance + realized PnL - fees reconciles with cash."""

    position_id: str
    symbol: str
    status: PositionStatus = PositionStatus.OPEN
    amount: Money = Decimal("0")
    avg_entry_price: Money = Decimal("0")
    realized_pnl: Money = Decimal("0")
    fees_paid: Money = Decimal("0")
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
    unsellable: str | None = Field(
        default=None,
        description="DUST: why the position monitor cannot sell what is held (below the market's "
        "minimum amount or notional at the last price); no exit is sent while it is set",
    )
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0

    @property
    def cost_basis(self) -> Decimal:
        return self.amount * self.avg_entry_price

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        return (price - self.avg_entry_price) * self.amount
