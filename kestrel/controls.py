"""Operator controls that persist across processes: the emergency stop (kill switch).

Kept in the store (per mode) so that a /stop from Telegram, the CLI or the Prefect UI blocks
the next trading cycle wherever it runs. Setting and clearing are audited as events in the
same write as the state change.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from kestrel.errors import ConcurrentUpdate
from kestrel.mode import current_mode
from kestrel.models import Event, EventType, utcnow
from kestrel.store.base import Store

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
    for _ in range(20):
        found = store.get_state(EMERGENCY_STOP_KEY)
        current = EmergencyStop.model_validate(found[0]) if found else EmergencyStop()
        version = found[1] if found else 0
        if current.active == active:
            return current
        now = utcnow()
        new = EmergencyStop(active=active, reason=reason, set_by=by, changed_at=now)
        event = Event(
            event_id=f"emergency_stop:{'set' if active else 'cleared'}:{now.isoformat()}",
            type=EventType.EMERGENCY_STOP_SET if active else EventType.EMERGENCY_STOP_CLEARED,
            mode=current_mode(),
            message=f"emergency stop {'SET' if active else 'CLEARED'} by {by}: {reason}",
            data={"by": by, "reason": reason},
        )
        try:
            with store.atomic():
                store.put_state(
                    EMERGENCY_STOP_KEY, new.model_dump(mode="json"), expected_version=version
                )
                store.append_events([event])
            return new
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate("emergency stop kept changing under us; try again")
