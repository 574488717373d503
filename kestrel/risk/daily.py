"""Today's PnL for the daily loss limit: realized (net of fees) + unrealized, against the
equity at the start of the (UTC) day.

At the first check of a day we snapshot the account's equity and every open position's
realized / unrealized PnL (state document `daily_risk`). Today's PnL is then, per position,
its realized-net-of-fees and unrealized PnL now minus the snapshot (zero for positions opened
since), so a position that was already under water at midnight is not counted twice. Positions
closed before today do not count. Amounts are in each pair's quote currency and converted to
USD at the current rate.

An account whose equity has no USD value (held only in BTC, say, with no BTC/USD price) is
measured in the currency its equity is known in: the snapshot records that currency and
today's PnL is converted to it, so the % limit holds in BTC. Equity nobody can value is
recorded as unknown (None), never as 0: a 0 start would make the limit 0 and block every
entry for a reason that is not true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.models import Position, utcnow
from kestrel.risk.context import DailyPnl
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state

DAILY_KEY = "daily_risk"
ZERO = Decimal("0")


class PositionMark(BaseModel):
    realized: Decimal
    unrealized: Decimal


class DayStart(BaseModel):
    day: str
    equity_usd: Decimal | None = Field(description="start-of-day equity, in `currency`")
    currency: str = Field(default="USD", description="what the day is measured in")
    marks: dict[str, PositionMark] = Field(default_factory=dict)
    captured_at: datetime


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def start_of_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def mark(position: Position, price: Decimal | None) -> PositionMark:
    realized = position.realized_pnl - position.fees_paid
    unrealized = position.unrealized_pnl(price) if price is not None and position.amount else ZERO
    return PositionMark(realized=realized, unrealized=unrealized)


def ensure_day_start(
    store: Store,
    now: datetime,
    equity_usd: Callable[[], Decimal | None],
    open_positions: Iterable[tuple[Position, Decimal | None]],
    *,
    fallback: tuple[str, Callable[[], Decimal | None]] | None = None,
) -> DayStart:
    """Today's snapshot; the first caller of the day writes it (CAS), everyone reads it.
    `fallback`: (currency, equity in it), used when the USD equity is unknown."""
    today = day_of(now)

    def change(doc: dict[str, Any] | None) -> StateChange[DayStart]:
        if doc is not None:
            current = DayStart.model_validate(doc)
            if current.day == today:
                return StateChange(result=current)
        equity, currency = equity_usd(), "USD"
        if equity is None and fallback is not None:
            currency, equity = fallback[0], fallback[1]()
        snapshot = DayStart(
            day=today,
            equity_usd=equity,
            currency=currency,
            marks={p.position_id: mark(p, price) for p, price in open_positions},
            captured_at=now,
        )
        return StateChange(result=snapshot, value=snapshot.model_dump(mode="json"))

    return update_state(store, DAILY_KEY, change, what="daily risk snapshot", attempts=10)


def daily_pnl(
    start: DayStart,
    positions: Iterable[tuple[Position, Decimal | None]],
    quote_usd: Callable[[str], Decimal | None],
    now: datetime | None = None,
) -> DailyPnl:
    """`positions`: open ones and those closed today, each with its current price (None:
    unknown, counted at its last mark). `quote_usd` converts a quote currency to the
    snapshot's currency (USD unless the day is measured in another); quote currencies
    without a rate are skipped."""
    midnight = start_of_day(now or utcnow())
    realized = unrealized = ZERO
    for position, price in positions:
        if position.closed_at is not None and position.closed_at < midnight:
            continue
        rate = quote_usd(position.symbol.partition("/")[2])
        if rate is None:
            continue
        now_mark = mark(position, price if price is not None else position.last_price)
        before = start.marks.get(position.position_id, PositionMark(realized=ZERO, unrealized=ZERO))
        realized += (now_mark.realized - before.realized) * rate
        unrealized += (now_mark.unrealized - before.unrealized) * rate
    return DailyPnl(
        day=start.day,
        currency=start.currency,
        start_equity_usd=start.equity_usd,
        realized_usd=realized,
        unrealized_usd=unrealized,
    )
