"""The circuit breaker against a real store: streaks of failed orders and losing trades,
the cool-off, resets, and the audit events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, Position, PositionStatus, utcnow
from kestrel.risk.breaker import refresh_circuit_breaker
from kestrel.risk.controls import circuit_breaker_state, reset_circuit_breaker
from kestrel.store.base import Store
from kestrel.strategy.settings import GateSettings

GATES = GateSettings(max_consecutive_failed_orders=3, max_consecutive_losses=2, cool_off_s=600)
_seq = iter(range(1_000_000))


def order_event(store: Store, kind: EventType, at: datetime | None = None) -> None:
    n = next(_seq)
    store.append_events(
        [
            Event(
                event_id=f"order-{n}:{kind}",
                type=kind,
                mode=TradingMode.DEMO,
                symbol="BTC/USDT",
                created_at=at or utcnow(),
            )
        ]
    )


def closed_trade(
    store: Store, realized: str, fees: str = "0.1", at: datetime | None = None
) -> None:
    n = next(_seq)
    moment = at or utcnow()
    store.save_position(
        Position(
            position_id=f"pos-{n}",
            symbol="BTC/USDT",
            status=PositionStatus.CLOSED,
            amount=Decimal("0"),
            avg_entry_price=Decimal("100"),
            realized_pnl=Decimal(realized),
            fees_paid=Decimal(fees),
            opened_at=moment - timedelta(minutes=5),
            closed_at=moment,
        ),
        expected_version=0,
    )


def breaker_events(store: Store) -> list[EventType]:
    kinds = [EventType.CIRCUIT_BREAKER_TRIPPED, EventType.CIRCUIT_BREAKER_RESET]
    return [e.type for e in store.list_events(types=kinds)]


def test_trips_on_the_nth_consecutive_failed_order_once(store: Store) -> None:
    for _ in range(2):
        order_event(store, EventType.ORDER_REJECTED)
    assert not refresh_circuit_breaker(store, GATES).active
    order_event(store, EventType.ORDER_FAILED)
    state = refresh_circuit_breaker(store, GATES)
    assert state.active and state.tripped
    assert (state.trigger, state.streak) == ("failed_orders", 3)
    assert state.cool_off_until == state.tripped_at + timedelta(seconds=600)  # type: ignore[operator]
    assert refresh_circuit_breaker(store, GATES).active
    assert breaker_events(store) == [EventType.CIRCUIT_BREAKER_TRIPPED]


@pytest.mark.parametrize(
    "ok", [EventType.ORDER_CREATED, EventType.ORDER_EXECUTED, EventType.ORDER_PARTIALLY_FILLED]
)
def test_an_accepted_order_ends_the_streak(store: Store, ok: EventType) -> None:
    for kind in (EventType.ORDER_REJECTED, EventType.ORDER_REJECTED, ok, EventType.ORDER_FAILED):
        order_event(store, kind)
    assert not refresh_circuit_breaker(store, GATES).active
    order_event(store, EventType.ORDER_FAILED)
    order_event(store, EventType.ORDER_FAILED)
    assert refresh_circuit_breaker(store, GATES).active


def test_losing_trades_net_of_fees(store: Store) -> None:
    closed_trade(store, "-5")
    closed_trade(store, "3")  # a winner ends the streak
    closed_trade(store, "0.05", fees="0.1")  # gross win, net loss
    assert not refresh_circuit_breaker(store, GATES).active  # 1 loser so far
    closed_trade(store, "-1")
    state = refresh_circuit_breaker(store, GATES)
    assert (state.active, state.trigger, state.streak) == (True, "losing_trades", 2)


def test_old_outcomes_are_outside_the_lookback(store: Store) -> None:
    old = utcnow() - timedelta(hours=GATES.breaker_lookback_h + 1)
    for _ in range(3):
        order_event(store, EventType.ORDER_REJECTED, at=old)
        closed_trade(store, "-1", at=old)
    assert not refresh_circuit_breaker(store, GATES).active


def test_cool_off_resets_and_the_old_streak_does_not_count_again(store: Store) -> None:
    for _ in range(3):
        order_event(store, EventType.ORDER_REJECTED)
    tripped = refresh_circuit_breaker(store, GATES)
    until = tripped.cool_off_until
    assert until is not None
    assert refresh_circuit_breaker(store, GATES, now=until - timedelta(microseconds=1)).active
    after = refresh_circuit_breaker(store, GATES, now=until)
    assert not after.active and after.changed_by == "cool-off"
    assert after.counts_since == until
    assert not refresh_circuit_breaker(store, GATES, now=until + timedelta(seconds=1)).active
    assert breaker_events(store) == [
        EventType.CIRCUIT_BREAKER_TRIPPED,
        EventType.CIRCUIT_BREAKER_RESET,
    ]
    # a fresh streak after the reset trips it again
    later = until + timedelta(seconds=2)
    for _ in range(3):
        order_event(store, EventType.ORDER_REJECTED, at=later)
    again = refresh_circuit_breaker(store, GATES, now=later + timedelta(seconds=1))
    assert again.active and again.trips == 2


def test_manual_reset_is_idempotent_and_audited(store: Store) -> None:
    for _ in range(3):
        order_event(store, EventType.ORDER_REJECTED)
    refresh_circuit_breaker(store, GATES)
    first = reset_circuit_breaker(store, reason="checked the exchange", by="cli")
    second = reset_circuit_breaker(store, reason="again", by="cli")
    assert not first.active and second == first
    assert breaker_events(store)[-1] is EventType.CIRCUIT_BREAKER_RESET
    assert len(breaker_events(store)) == 2
    assert not refresh_circuit_breaker(store, GATES).active


def test_telegram_status_reads_the_state(store: Store) -> None:
    from kestrel.notify.commands import _breaker_text

    assert _breaker_text(store) == "ok"
    for _ in range(3):
        order_event(store, EventType.ORDER_REJECTED)
    refresh_circuit_breaker(store, GATES)
    assert _breaker_text(store).startswith("TRIPPED: 3 consecutive failed orders")
    state, version = circuit_breaker_state(store)
    assert state.active and version == 1
