"""Trailing stops: where a position's trailing stop stands, and how it moves its stop-loss.

A position carries its trailing stop as two fractions (`Position.trailing_stop_pct`, the
distance below the high since entry, and `trailing_activation_pct`, the profit over the entry
at which trailing starts); the position monitor arms them from the symbol's strategy or the
`trading.trailing` live setting and calls `ratchet` on every pass. The trailing stop never
exits by itself: it raises the position's stop-loss, never lowers it, so the one stop-loss
path (the monitor's exit, or the native stop order protection keeps in line) does the rest.
"""

from __future__ import annotations

from decimal import Decimal

from kestrel.mode import current_mode
from kestrel.models import Event, EventType, Position
from kestrel.money import round_down_to_step


def trailing_level(position: Position) -> Decimal | None:
    """Where the trailing stop stands now (`trailing_stop_pct` below the high since entry),
    or None while it is off or not active yet (the high has not reached the entry plus
    `trailing_activation_pct`)."""
    distance, high = position.trailing_stop_pct, position.high_water_mark
    if not distance or high is None or position.avg_entry_price <= 0:
        return None
    start = position.avg_entry_price * (1 + (position.trailing_activation_pct or 0))
    if high < start:
        return None
    return high * (1 - distance)


def ratchet(position: Position, tick: Decimal) -> Position:
    """The position with its stop-loss raised to the trailing level (rounded down to the
    market's tick: a stop never above the trail), or unchanged: never lowered."""
    level = trailing_level(position)
    if level is None:
        return position
    level = round_down_to_step(level, tick)
    if position.stop_loss is not None and level <= position.stop_loss:
        return position
    return position.model_copy(update={"stop_loss": level})


def activation_event(position: Position) -> Event:
    """Once per position (its id is deterministic): the trailing stop started to follow."""
    return Event(
        event_id=f"trailing:{position.position_id}:active",
        type=EventType.SLTP_CREATED,
        mode=current_mode(),
        symbol=position.symbol,
        message=(
            f"{position.symbol}: trailing stop active (high {position.high_water_mark}); the "
            f"stop-loss follows {position.trailing_stop_pct:%} below the high, now "
            f"{position.stop_loss}"
        ),
        data={
            "position_id": position.position_id,
            "stop_loss": str(position.stop_loss),
            "high_water_mark": str(position.high_water_mark),
            "trailing_stop_pct": str(position.trailing_stop_pct),
        },
    )


def levels_text(position: Position) -> str:
    """A position's exits as an operator reads them (CLI status / live, Telegram /positions):
    stop-loss, trailing stop and whether it is active, take-profit, and DUST when marked."""
    parts = [f"SL {_num(position.stop_loss)}"]
    if position.trailing_stop_pct:
        start = position.trailing_activation_pct or Decimal(0)
        state = "active" if trailing_level(position) is not None else "waiting"
        distance = _num(position.trailing_stop_pct * 100)
        parts.append(f"trailing {distance}% from +{_num(start * 100)}% ({state})")
    parts.append(f"TP {_num(position.take_profit)}")
    if position.unsellable:
        parts.append(f"DUST: {position.unsellable}")
    return ", ".join(parts)


def _num(value: Decimal | None) -> str:
    return "none" if value is None else format(value.normalize(), "f")
