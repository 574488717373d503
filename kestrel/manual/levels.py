"""Moving an open position's stop-loss, take-profit and trailing stop by hand.

The levels live on the position (kestrel.models.Position); the position monitor watches them
and protection (kestrel.execution.protection) keeps a native stop-loss order in line with them. So a
move is: check the new levels against the last price, save them on the position
(compare-and-set, with an SLTP_CREATED event naming who moved what), then run protection for
that position at once: a stop order resting on the exchange is replaced there (cancel, its
confirmed final state and fills recorded, a new stop for what is then held), exactly as when
a partial fill resizes it. Where the monitor watches the levels, saving them is the move.

Confirmation (REAL, or DEMO when asked) is kestrel.manual's: the preview issues a
token bound to this request and to the position as it was previewed (`MovePlan.fingerprint`);
confirming re-plans and refuses when the position changed meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kestrel.errors import ManualError
from kestrel.execution.protection import ProtectionPolicy, ProtectionReport, ensure_protection
from kestrel.execution.trailing import trailing_level
from kestrel.mode import current_mode
from kestrel.models import Event, EventType, Order, OrderRole, Position, PositionStatus, utcnow
from kestrel.models.manual import MoveLevelsRequest, canonical_decimal
from kestrel.money import to_decimal
from kestrel.runtime import Runtime
from kestrel.store.cas import retry_on_conflict

LEVEL_FIELDS = ("stop_loss", "take_profit", "trailing_stop_pct", "trailing_activation_pct")


@dataclass(frozen=True)
class MovePlan:
    """A move as previewed: the position, its levels now and after, and the last price."""

    position: Position
    target: dict[str, Decimal | None]
    last_price: Decimal

    @property
    def fingerprint(self) -> str:
        """The position as previewed: a confirmation acts only on the same one."""
        p = self.position
        state = [p.position_id, str(p.amount), *(str(getattr(p, f)) for f in LEVEL_FIELDS)]
        return hashlib.sha256(json.dumps(state).encode()).hexdigest()

    def changes(self) -> list[str]:
        return [
            f"{name}: {_show(getattr(self.position, name))} -> {_show(value)}"
            for name, value in self.target.items()
            if value != getattr(self.position, name)
        ]

    def warnings(self) -> list[str]:
        moved = self.position.model_copy(update=self.target)
        trail = trailing_level(moved)
        stop = moved.stop_loss
        if trail is not None and stop is not None and stop < trail:
            return [
                f"the trailing stop is active at {canonical_decimal(trail)}: the next monitor "
                "pass raises the stop-loss back to it (set trailing 0 to turn it off)"
            ]
        return []


def _show(value: Decimal | None) -> str:
    return canonical_decimal(value) or "none"


def plan_move(rt: Runtime, request: MoveLevelsRequest) -> MovePlan:
    """The move `request` asks for, checked against the last price. Writes nothing.
    ManualError when there is no open position or a level would trigger at once."""
    position = rt.store.open_position(request.symbol)
    if position is None:
        raise ManualError(f"there is no open {request.symbol} position to move the levels of")
    market = rt.market(request.symbol)
    last = to_decimal(rt.exchange.fetch_ticker(request.symbol)["last"])
    target: dict[str, Decimal | None] = {}
    if request.stop_loss is not None:
        stop = market.stop_price("sell", request.stop_loss)
        if stop >= last:
            raise ManualError(
                f"a stop-loss at {canonical_decimal(stop)} is at or above the last price "
                f"{canonical_decimal(last)}: it would sell at once. To sell now use `kestrel "
                f"order close {request.symbol}` (Telegram: /close {request.symbol})"
            )
        target["stop_loss"] = stop
    if request.take_profit is not None:
        take = market.limit_price("sell", request.take_profit)
        if take <= last:
            raise ManualError(
                f"a take-profit at {canonical_decimal(take)} is at or below the last price "
                f"{canonical_decimal(last)}: it would sell at once. To sell now use `kestrel "
                f"order close {request.symbol}` (Telegram: /close {request.symbol})"
            )
        target["take_profit"] = take
    if request.trailing_distance_pct is not None:
        target["trailing_stop_pct"] = request.trailing_distance_pct / 100
        target["trailing_activation_pct"] = (request.trailing_activation_pct or Decimal(0)) / 100
    return MovePlan(position=position, target=target, last_price=last)


def apply_move(rt: Runtime, move: MovePlan, *, actor: str, request_id: str) -> list[Order]:
    """Save the new levels on the position, then bring its protection in line (a resting
    stop order is replaced). Returns the position's stop orders made or kept by it."""
    position = _save_levels(rt, move, actor, request_id)
    policy = ProtectionPolicy.from_settings(rt.settings.exchange_api)
    ensure_protection(rt.store, rt.exchange, policy, position, ProtectionReport())
    stops = [
        o
        for o in rt.store.list_orders(symbol=position.symbol, roles=(OrderRole.STOP_LOSS,))
        if o.position_id == position.position_id
    ]
    return stops[-1:]


def _save_levels(rt: Runtime, move: MovePlan, actor: str, request_id: str) -> Position:
    """Apply the move on the stored position (if the monitor marked it meanwhile, on top of
    that)."""

    def attempt() -> Position:
        current = rt.store.get_position(move.position.position_id)
        if current is None or current.status is not PositionStatus.OPEN:
            raise ManualError(f"the {move.position.symbol} position closed meanwhile: not moved")
        moved = current.model_copy(update={**move.target, "updated_at": utcnow()})
        return rt.store.save_position(
            moved,
            expected_version=current.version,
            events=[_moved_event(current, moved, actor, request_id)],
        )

    return retry_on_conflict(attempt, what=f"the {move.position.symbol} position")


def _moved_event(before: Position, after: Position, actor: str, request_id: str) -> Event:
    data: dict[str, Any] = {"position_id": after.position_id, "by": actor}
    changes = []
    for name in LEVEL_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        data[name] = str(new) if new is not None else None
        if old != new:
            changes.append(f"{name} {_show(old)} -> {_show(new)}")
    return Event(
        event_id=f"sltp:{after.position_id}:moved:{request_id}:{before.version}",
        type=EventType.SLTP_CREATED,
        mode=current_mode(),
        symbol=after.symbol,
        reasons=["MANUAL_MOVE"],
        message=f"{after.symbol}: {', '.join(changes) or 'levels unchanged'} by {actor}",
        data=data,
    )


__all__ = ["MovePlan", "apply_move", "plan_move"]
