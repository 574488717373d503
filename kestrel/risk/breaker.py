"""The circuit breaker's trip and cool-off logic, read from the store.

Trips after N consecutive failed orders (REJECTED or FAILED; an order the exchange accepted
or filled ends the streak) or N consecutive losing trades (closed positions whose realized
PnL net of fees is negative; a winner ends the streak). A tripped breaker blocks every new
order until its cool-off is over (wall clock), or until `kestrel breaker reset`; outcomes
before a reset never count again, so a reset is not undone by the same old streak.

The orders and positions are owned by the order lifecycle (kestrel.execution.orders / ledger); this
module only reads what it wrote: order events and closed positions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel

from kestrel.models import Event, EventType, Position, PositionStatus, utcnow
from kestrel.risk.controls import (
    CircuitBreaker,
    circuit_breaker_state,
    reset_circuit_breaker,
    trip_circuit_breaker,
)
from kestrel.store.base import Store
from kestrel.strategy.settings import GateSettings

FAILED_ORDER = frozenset({EventType.ORDER_REJECTED, EventType.ORDER_FAILED})
GOOD_ORDER = frozenset(
    {EventType.ORDER_CREATED, EventType.ORDER_EXECUTED, EventType.ORDER_PARTIALLY_FILLED}
)


class Streaks(BaseModel):
    failed_orders: int = 0
    last_failed_event: str = ""
    losing_trades: int = 0
    last_losing_position: str = ""


def order_streak(events: Iterable[Event]) -> tuple[int, str]:
    """Trailing run of failed orders in event order, and the id of its last event."""
    streak, last = 0, ""
    for event in events:
        if event.type in FAILED_ORDER:
            streak, last = streak + 1, event.event_id
        elif event.type in GOOD_ORDER:
            streak, last = 0, ""
    return streak, last


def net_pnl(position: Position) -> float:
    return float(position.realized_pnl - position.fees_paid)


def loss_streak(closed: Iterable[Position]) -> tuple[int, str]:
    """Trailing run of losing trades, oldest first by closing time."""
    ordered = sorted(
        (p for p in closed if p.closed_at is not None),
        key=lambda p: (p.closed_at or p.updated_at, p.position_id),
    )
    streak, last = 0, ""
    for position in ordered:
        if net_pnl(position) < 0:
            streak, last = streak + 1, position.position_id
        else:
            streak, last = 0, ""
    return streak, last


def streaks(store: Store, since: datetime) -> Streaks:
    events = store.list_events(types=[*FAILED_ORDER, *GOOD_ORDER], since=since)
    failed, last_event = order_streak(events)
    closed = [
        p
        for p in store.list_positions(status=PositionStatus.CLOSED)
        if p.closed_at is not None and p.closed_at >= since
    ]
    losses, last_position = loss_streak(closed)
    return Streaks(
        failed_orders=failed,
        last_failed_event=last_event,
        losing_trades=losses,
        last_losing_position=last_position,
    )


def refresh_circuit_breaker(
    store: Store, gates: GateSettings, now: datetime | None = None
) -> CircuitBreaker:
    """Reset after the cool-off, or trip on a streak; returns the state to act on."""
    now = now or utcnow()
    state, _ = circuit_breaker_state(store)
    if state.active:
        if state.cool_off_until is not None and now >= state.cool_off_until:
            return reset_circuit_breaker(
                store, reason=f"cool-off of {gates.cool_off_s:g}s over", by="cool-off", now=now
            )
        return state
    since = now - timedelta(hours=gates.breaker_lookback_h)
    if state.counts_since is not None and state.counts_since > since:
        since = state.counts_since
    found = streaks(store, since)
    streaks_to_check = (
        (
            "failed_orders",
            found.failed_orders,
            gates.max_consecutive_failed_orders,
            "consecutive failed orders",
            f"orders:{found.last_failed_event}",
        ),
        (
            "losing_trades",
            found.losing_trades,
            gates.max_consecutive_losses,
            "consecutive losing trades",
            f"losses:{found.last_losing_position}",
        ),
    )
    for trigger, streak, limit, what, fingerprint in streaks_to_check:
        if streak >= limit:
            return trip_circuit_breaker(
                store,
                trigger=trigger,
                streak=streak,
                reason=f"{streak} {what} (max {limit})",
                cool_off_s=gates.cool_off_s,
                by="risk",
                fingerprint=fingerprint,
                now=now,
            )
    return state
