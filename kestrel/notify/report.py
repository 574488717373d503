"""Trading results over a period, from the store alone: the daily report and /pnl.

Realized PnL is recomputed by replaying every fill with the ledger's own rules (average
entry price, fees in quote via `kestrel.ledger.fee_in_quote`), so a sell is credited to the
day it happened even when its position opened days before, and days are market time (fill
timestamps), which also holds in replays. PnL is gross, fees are listed separately, as in
the ledger. A closed position is a win when its realized PnL minus all its fees is positive.
Money is kept per quote currency: USDT and BTC profits are never added together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from kestrel.ledger import base_received, fee_in_quote
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, Fill, Money, PositionStatus, Side
from kestrel.store.base import Store
from kestrel.trailing import levels_text

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
class ReplayedFill:
    fill: Fill
    realized: Decimal  # PnL this fill realized (zero for buys)
    fee: Decimal  # in quote
    closed_trip_net: Decimal | None  # set when this fill closed a position: its PnL - fees


def replay_fills(fills: Iterable[Fill]) -> list[ReplayedFill]:
    """Replay every fill with the ledger's rules (average entry, fees in quote); a position
    closes when a sell brings the holding to zero, as in kestrel.ledger."""
    held: dict[str, Decimal] = defaultdict(lambda: ZERO)
    entry: dict[str, Decimal] = defaultdict(lambda: ZERO)
    trip: dict[str, Decimal] = defaultdict(lambda: ZERO)
    out: list[ReplayedFill] = []
    for fill in sorted(fills, key=lambda f: (f.timestamp, f.trade_id)):
        symbol, fee = fill.symbol, fee_in_quote(fill)
        amount, price = held[symbol], entry[symbol]
        if fill.side is Side.BUY:
            new_amount = amount + base_received(fill)
            if new_amount > 0:
                entry[symbol] = (amount * price + fill.amount * fill.price) / new_amount
            held[symbol] = new_amount
            trip[symbol] -= fee
            out.append(ReplayedFill(fill, ZERO, fee, None))
            continue
        sold = min(fill.amount, amount)
        realized = (fill.price - price) * sold
        held[symbol] = amount - sold
        trip[symbol] += realized - fee
        closed = None
        if sold > 0 and held[symbol] == 0:
            closed, trip[symbol] = trip[symbol], ZERO
        out.append(ReplayedFill(fill, realized, fee, closed))
    return out


def period_stats(store: Store, start: datetime, end: datetime) -> PeriodStats:
    """Trades, realized PnL and fees of the fills in [start, end), and the positions those
    fills closed (a win when the position's PnL minus all its fees is positive)."""
    stats = PeriodStats(start=start, end=end)
    lo, hi = _ms(start), _ms(end)
    volume: dict[str, Decimal] = defaultdict(lambda: ZERO)
    pnl: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for item in replay_fills(store.list_fills()):
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
        fees[quote] += item.fee
        if item.closed_trip_net is not None:
            stats.closed_count += 1
            stats.win_count += int(item.closed_trip_net > 0)
    stats.volume, stats.realized_pnl, stats.fees = dict(volume), dict(pnl), dict(fees)
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
