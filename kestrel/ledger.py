"""Positions follow the fills. Each fill is recorded once (by trade id) and, in the same
transaction, moves the symbol's position: buys average in, sells realize PnL.

PnL is gross; fees are counted separately in quote terms, so that for every quote currency
start balance + realized PnL - fees - cost of what is still held = cash.
"""

from __future__ import annotations

from decimal import Decimal

from kestrel.errors import ConcurrentUpdate
from kestrel.mode import current_mode
from kestrel.models import (
    Event,
    EventType,
    Fill,
    Position,
    PositionStatus,
    Side,
    utcnow,
)
from kestrel.store.base import Store


def fee_in_quote(fill: Fill) -> Decimal:
    base, _, quote = fill.symbol.partition("/")
    if fill.fee_currency == quote:
        return fill.fee_cost
    if fill.fee_currency == base:
        return fill.fee_cost * fill.price
    return Decimal("0")  # e.g. BNB fees: not charged against this pair's balances


def base_received(fill: Fill) -> Decimal:
    """What a buy adds to the holding: exchanges that take the fee in base keep a slice."""
    base = fill.symbol.partition("/")[0]
    fee = fill.fee_cost if fill.fee_currency == base else Decimal("0")
    return fill.amount - fee if fill.side is Side.BUY else fill.amount


def _apply(
    position: Position | None, fill: Fill, protect: tuple[Decimal | None, Decimal | None]
) -> tuple[Position, list[EventType]]:
    now = utcnow()
    fee = fee_in_quote(fill)
    if fill.side is Side.BUY:
        if position is None:
            position = Position(
                position_id=f"{fill.symbol}:{fill.trade_id}",
                symbol=fill.symbol,
                opened_at=now,
                stop_loss=protect[0],
                take_profit=protect[1],
                high_water_mark=fill.price,
            )
            opened = [EventType.POSITION_OPENED]
        else:
            opened = []
        received = base_received(fill)
        new_amount = position.amount + received
        # Entry price carries the full quote paid per unit held (fee-in-base raises it).
        cost = position.amount * position.avg_entry_price + fill.amount * fill.price
        return (
            position.model_copy(
                update={
                    "amount": new_amount,
                    "avg_entry_price": cost / new_amount,
                    "fees_paid": position.fees_paid + fee,
                    "last_price": fill.price,
                    "updated_at": now,
                }
            ),
            opened,
        )
    assert position is not None, "callers handle sells without a position"
    sold = min(fill.amount, position.amount)
    realized = (fill.price - position.avg_entry_price) * sold
    remaining = position.amount - sold
    closed = remaining == 0
    return (
        position.model_copy(
            update={
                "amount": remaining,
                "realized_pnl": position.realized_pnl + realized,
                "fees_paid": position.fees_paid + fee,
                "last_price": fill.price,
                "status": PositionStatus.CLOSED if closed else PositionStatus.OPEN,
                "closed_at": now if closed else None,
                "updated_at": now,
            }
        ),
        [EventType.POSITION_CLOSED] if closed else [],
    )


def record_fill(
    store: Store,
    fill: Fill,
    protect: tuple[Decimal | None, Decimal | None] = (None, None),
) -> bool:
    """Store the fill and move the position, atomically. False if already recorded.
    `protect` is the (stop-loss, take-profit) a position opened by this fill starts with."""
    for _ in range(20):
        try:
            with store.atomic():
                if not store.add_fill(fill):
                    return False
                current = _position_for(store, fill)
                if current is None and fill.side is Side.SELL:
                    store.append_events([_untracked_sell(fill)])
                    return True
                expected = current.version if current else 0
                updated, event_types = _apply(current, fill, protect)
                events = [
                    Event(
                        event_id=f"{updated.position_id}:{kind}",
                        type=kind,
                        mode=current_mode(),
                        symbol=fill.symbol,
                        client_order_id=fill.client_order_id,
                        message=_position_message(kind, updated),
                        data={
                            "amount": str(updated.amount),
                            "avg_entry_price": str(updated.avg_entry_price),
                            "realized_pnl": str(updated.realized_pnl),
                            "fees_paid": str(updated.fees_paid),
                        },
                    )
                    for kind in event_types
                ]
                store.save_position(updated, expected_version=expected, events=events)
                return True
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"could not record fill {fill.trade_id}: position kept changing")


def _position_for(store: Store, fill: Fill) -> Position | None:
    return store.open_position(fill.symbol)


def _position_message(kind: EventType, position: Position) -> str:
    if kind is EventType.POSITION_OPENED:
        return f"opened {position.symbol} {position.amount} @ {position.avg_entry_price}"
    return f"closed {position.symbol}: realized {position.realized_pnl}, fees {position.fees_paid}"


def _untracked_sell(fill: Fill) -> Event:
    """A sell of coins we never bought (held before Kestrel, or sold by hand): keep the fill,
    leave positions alone, and say so loudly."""
    return Event(
        event_id=f"untracked_sell:{fill.client_order_id}:{fill.trade_id}",
        type=EventType.CRITICAL,
        mode=current_mode(),
        symbol=fill.symbol,
        client_order_id=fill.client_order_id,
        message=f"sell fill {fill.trade_id} of {fill.amount} {fill.symbol} has no tracked position",
    )
