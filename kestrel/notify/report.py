"""Trading results over a period, from the store alone: the daily report and /pnl.

Realized PnL is what the ledger booked for each fill: a position lists the PnL each of its
fills realized (`Position.fills`, written by `kestrel.books.ledger.apply_fill`), so a sell is
credited to the day it happened even when its position opened days before, days are market
time (fill timestamps, which also holds in replays), and the report agrees exactly with the
positions. Fees are each fill's fees as the ledger counts them (`kestrel.books.ledger.fee_values`):
valued in quote at fill time, a buy's fee in the base asset not again (it is in the entry
cost), a fee with no rate listed apart as not valued (never silently zero). PnL is gross,
fees are listed separately, as in the ledger. A closed position is a win when its realized
PnL minus its fees (`fees_paid`) is positive. Money is kept per currency: USDT and BTC
profits are never added together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from kestrel.books.ledger import fee_values
from kestrel.execution.trailing import levels_text
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, Fill, Money, Position, PositionStatus, Side
from kestrel.store.base import Store

ZERO = Decimal("0")


class OpenPositionLine(BaseModel):
    symbol: str
    amount: Money
    avg_entry_price: Money
    last_price: Money | None = None
    unrealized_pnl: Money | None = None
    levels: str = ""


class PeriodStats(BaseModel):
    start: datetime
    end: datetime
    trade_count: int = 0
    buy_count: int = 0
    sell_count: int = 0
    volume: dict[str, Money] = Field(default_factory=dict)
    realized_pnl: dict[str, Money] = Field(default_factory=dict)
    fees: dict[str, Money] = Field(default_factory=dict)
    fees_not_valued: dict[str, Money] = Field(
        default_factory=dict,
        description="fees with no rate to their quote at fill time, per currency as charged: "
        "not in `fees`, so the net PnL is overstated by them",
    )
    closed_count: int = 0
    win_count: int = 0

    @property
    def win_rate(self) -> float | None:
        return self.win_count / self.closed_count if self.closed_count else None


class DailySummary(PeriodStats):
    day: date
    timezone: str
    open_positions: list[OpenPositionLine] = Field(default_factory=list)


def _quote(symbol: str) -> str:
    return symbol.partition("/")[2] or "?"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class BookedFill:
    """A fill and what the ledger booked for it."""

    fill: Fill
    realized: Decimal  # the PnL it realized (zero for buys)
    fees: dict[str, Decimal]  # its fees counted, valued in quote, per fee currency
    fees_unvalued: dict[str, Decimal]  # its fees with no rate to the quote, as charged
    closed_net: Decimal | None  # when it closed its position: that position's PnL - fees


def booked_fills(fills: Iterable[Fill], positions: Iterable[Position]) -> list[BookedFill]:
    """Each fill with what the ledger booked for it, read from the position that applied it
    rather than folded again here: a second fold would need the market's minimums to close
    a position on dust, and any difference would make the report disagree with the books.
    A fill no position lists (a sell of coins never bought) realized nothing, as in the
    ledger."""
    applied_by = {key: position for position in positions for key in position.fills}
    out: list[BookedFill] = []
    for fill in fills:
        valued, unvalued = fee_values(fill)
        position = applied_by.get(fill.key)
        if position is None:
            out.append(BookedFill(fill, ZERO, valued, unvalued, None))
            continue
        closed = position.status is PositionStatus.CLOSED and list(position.fills)[-1] == fill.key
        net = position.realized_pnl - position.fees_paid if closed else None
        out.append(BookedFill(fill, position.fills[fill.key], valued, unvalued, net))
    return out


def period_stats(store: Store, start: datetime, end: datetime) -> PeriodStats:
    """Trades, realized PnL and fees of the fills in [start, end), and the positions those
    fills closed (a win when the position's PnL minus its fees is positive), as the ledger
    booked them."""
    stats = PeriodStats(start=start, end=end)
    lo, hi = _ms(start), _ms(end)
    volume: dict[str, Decimal] = defaultdict(lambda: ZERO)
    pnl: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fees_unvalued: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for item in booked_fills(store.list_fills(), store.list_positions()):
        fill = item.fill
        if not lo <= fill.timestamp < hi:
            continue
        quote = _quote(fill.symbol)
        stats.trade_count += 1
        if fill.side is Side.BUY:
            stats.buy_count += 1
        else:
            stats.sell_count += 1
        volume[quote] += fill.cost
        pnl[quote] += item.realized
        fees[quote] += sum(item.fees.values(), ZERO)
        for currency, cost in item.fees_unvalued.items():
            fees_unvalued[currency] += cost
        if item.closed_net is not None:
            stats.closed_count += 1
            stats.win_count += int(item.closed_net > 0)
    stats.volume, stats.realized_pnl, stats.fees = dict(volume), dict(pnl), dict(fees)
    stats.fees_not_valued = dict(fees_unvalued)
    return stats


def open_position_lines(store: Store) -> list[OpenPositionLine]:
    lines = []
    for position in store.list_positions(status=PositionStatus.OPEN):
        last = position.last_price
        lines.append(
            OpenPositionLine(
                symbol=position.symbol,
                amount=position.amount,
                avg_entry_price=position.avg_entry_price,
                last_price=last,
                unrealized_pnl=position.unrealized_pnl(last) if last is not None else None,
                levels=levels_text(position),
            )
        )
    return lines


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_day(now: datetime, zone: ZoneInfo) -> date:
    """The report's default day: yesterday where the operator lives."""
    return (now.astimezone(zone) - timedelta(days=1)).date()


def build_daily_summary(store: Store, day: date, zone: ZoneInfo) -> DailySummary:
    start, end = day_bounds(day, zone)
    stats = period_stats(store, start, end)
    return DailySummary(
        **stats.model_dump(),
        day=day,
        timezone=str(zone.key),
        open_positions=open_position_lines(store),
    )


def daily_summary_event(summary: DailySummary, mode: TradingMode) -> Event:
    """Deterministic id: one DAILY_SUMMARY per day and mode, however often the flow runs."""
    return Event(
        event_id=f"daily_summary:{summary.day.isoformat()}",
        type=EventType.DAILY_SUMMARY,
        mode=mode,
        message=f"daily report for {summary.day.isoformat()} ({summary.timezone})",
        data=summary.model_dump(mode="json"),
    )


def record_daily_summary(store: Store, summary: DailySummary) -> Event:
    """Store the summary as an event (the outbox then delivers it); returns the stored one,
    which is the earlier one if this day was already reported."""
    (stored,) = store.append_events([daily_summary_event(summary, store.mode)])
    return stored
