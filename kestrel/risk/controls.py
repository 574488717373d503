"""Operator controls that persist across processes: the emergency stop (kill switch) and
the circuit breaker's state.

Kept in the store (per mode) so that a /stop from Telegram, the CLI or the Prefect UI blocks
the next trading cycle wherever it runs. Setting and clearing are audited as events in the
same write as the state change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from kestrel.mode import current_mode
from kestrel.models import Event, EventType, utcnow
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, retry_on_conflict, update_state

EMERGENCY_STOP_KEY = "emergency_stop"


class EmergencyStop(BaseModel):
    active: bool = False
    reason: str = ""
    set_by: str = ""
    changed_at: datetime | None = None


def emergency_stop_state(store: Store) -> EmergencyStop:
    found = store.get_state(EMERGENCY_STOP_KEY)
    return EmergencyStop.model_validate(found[0]) if found else EmergencyStop()


def set_emergency_stop(store: Store, *, active: bool, reason: str, by: str) -> EmergencyStop:
    """Set or clear the kill switch; idempotent (a repeat changes nothing and emits nothing)."""

    def change(doc: dict[str, Any] | None) -> StateChange[EmergencyStop]:
        current = EmergencyStop.model_validate(doc) if doc else EmergencyStop()
        if current.active == active:
            return StateChange(result=current)
        now = utcnow()
        new = EmergencyStop(active=active, reason=reason, set_by=by, changed_at=now)
        event = Event(
            event_id=f"emergency_stop:{'set' if active else 'cleared'}:{now.isoformat()}",
            type=EventType.EMERGENCY_STOP_SET if active else EventType.EMERGENCY_STOP_CLEARED,
            mode=current_mode(),
            message=f"emergency stop {'SET' if active else 'CLEARED'} by {by}: {reason}",
            data={"by": by, "reason": reason},
        )
        return StateChange(result=new, value=new.model_dump(mode="json"), events=[event])

    return update_state(store, EMERGENCY_STOP_KEY, change, what="emergency stop")


# -- circuit breaker ----------------------------------------------------------------------------
# Tripped by kestrel.risk.breaker after N consecutive failed orders or losing trades; resets
# itself after a cool-off, or from `kestrel breaker reset`. The Telegram /status card reads
# `tripped` / `active` and `reason` from this document.

CIRCUIT_BREAKER_KEY = "circuit_breaker"


class CircuitBreaker(BaseModel):
    active: bool = False
    tripped: bool = False  # same as active; both spellings are read by /status
    reason: str = ""
    trigger: str = ""  # failed_orders | losing_trades
    streak: int = 0
    tripped_at: datetime | None = None
    cool_off_until: datetime | None = None
    counts_since: datetime | None = Field(
        default=None, description="outcomes before this (the last reset) never count again"
    )
    changed_by: str = ""
    trips: int = 0


def circuit_breaker_state(store: Store) -> tuple[CircuitBreaker, int]:
    """(state, version); a never-tripped breaker at version 0."""
    found = store.get_state(CIRCUIT_BREAKER_KEY)
    if found is None:
        return CircuitBreaker(), 0
    return CircuitBreaker.model_validate(found[0]), found[1]


def _write_breaker(store: Store, new: CircuitBreaker, version: int, event: Event) -> CircuitBreaker:
    with store.atomic():
        store.put_state(CIRCUIT_BREAKER_KEY, new.model_dump(mode="json"), expected_version=version)
        store.append_events([event])
    return new


def trip_circuit_breaker(
    store: Store,
    *,
    trigger: str,
    streak: int,
    reason: str,
    cool_off_s: float,
    by: str,
    fingerprint: str,
    now: datetime | None = None,
) -> CircuitBreaker:
    """Trip (idempotent: an active breaker stays as it is). `fingerprint` names the streak
    that tripped it, so two processes tripping on the same streak store one event."""

    def attempt() -> CircuitBreaker:
        current, version = circuit_breaker_state(store)
        if current.active:
            return current
        moment = now or utcnow()
        new = current.model_copy(
            update={
                "active": True,
                "tripped": True,
                "reason": reason,
                "trigger": trigger,
                "streak": streak,
                "tripped_at": moment,
                "cool_off_until": moment + timedelta(seconds=cool_off_s),
                "changed_by": by,
                "trips": current.trips + 1,
            }
        )
        event = Event(
            event_id=f"circuit_breaker:tripped:{fingerprint}",
            type=EventType.CIRCUIT_BREAKER_TRIPPED,
            mode=current_mode(),
            reasons=["BLOCKED_CIRCUIT_BREAKER"],
            message=f"circuit breaker TRIPPED: {reason}; cool-off until "
            f"{new.cool_off_until.isoformat() if new.cool_off_until else '-'}",
            data={"trigger": trigger, "streak": streak, "cool_off_s": cool_off_s, "by": by},
        )
        return _write_breaker(store, new, version, event)

    return retry_on_conflict(attempt, what="circuit breaker")


def reset_circuit_breaker(
    store: Store, *, reason: str, by: str, now: datetime | None = None
) -> CircuitBreaker:
    """Reset (idempotent). Outcomes before the reset never count towards a new trip."""

    def attempt() -> CircuitBreaker:
        current, version = circuit_breaker_state(store)
        if not current.active:
            return current
        moment = now or utcnow()
        new = current.model_copy(
            update={
                "active": False,
                "tripped": False,
                "reason": reason,
                "counts_since": moment,
                "changed_by": by,
            }
        )
        stamp = current.tripped_at.isoformat() if current.tripped_at else "never"
        event = Event(
            event_id=f"circuit_breaker:reset:{stamp}",
            type=EventType.CIRCUIT_BREAKER_RESET,
            mode=current_mode(),
            message=f"circuit breaker reset by {by}: {reason}",
            data={"by": by, "reason": reason, "tripped_at": stamp},
        )
        return _write_breaker(store, new, version, event)

    return retry_on_conflict(attempt, what="circuit breaker")
