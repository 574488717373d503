"""Positions follow the fills. Each fill is recorded once (by trade id) and, in the same
transaction, moves the symbol's position: buys average in, sells realize PnL.

PnL is gross; fees are counted separately in quote terms, so that for every quote currency
start balance + realized PnL - fees - cost of what is still held = cash.

A sell that leaves less than the market can trade (below its minimum amount, step or
notional; typically the slice of a buy fee taken in the base asset) closes the position and
keeps that remainder as `dust`, written off at cost in the realized PnL (it cannot be sold,
and the quote-currency books stay exact; the base-currency wallet keeps those coins).

Daily PnL, for the daily loss limit: every recorded fill also adds, in the same transaction,
to the state document `daily_pnl:<YYYY-MM-DD>` (UTC date of the fill's exchange timestamp,
i.e. market time in a replay; the wall clock when the exchange gave none):

    {"date": "2024-05-01", "mode": "REAL",
     "currencies": {"USDT": {"realized_pnl": "12.5", "fees": "0.75", "net": "11.75",
                             "unrealized_pnl": "-3.1"}},
     "fills": 7, "positions_closed": 2, "updated_at": "<ISO time>"}

Amounts are Decimal strings per quote currency. realized_pnl is gross (sells), fees are every
fill's fee in quote terms, net = realized_pnl - fees. unrealized_pnl is the latest
mark-to-market of the positions open that day, written by the position monitor
(`record_unrealized`). A day's loss is -(net + unrealized_pnl) when that is positive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kestrel.errors import ConcurrentUpdate
from kestrel.mode import current_mode
from kestrel.models import (
    Event,
    EventType,
    Fill,
    MarketSpec,
    Position,
    PositionStatus,
    Side,
    utcnow,
)
from kestrel.store.base import Store

DAILY_PNL_PREFIX = "daily_pnl:"


# What the ledger needs to know of a market: whether a remainder is dust (too small to sell).
Tradable = MarketSpec


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
    position: Position | None,
    fill: Fill,
    protect: tuple[Decimal | None, Decimal | None],
    tradable: Tradable | None = None,
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
    dust = Decimal("0")
    if remaining > 0 and tradable is not None and tradable.is_dust(remaining, fill.price):
        # Unsellable: written off at cost, so the quote books stay exact (the coins stay in
        # the wallet, recorded as `dust`).
        dust, remaining = remaining, Decimal("0")
        realized -= dust * position.avg_entry_price
    closed = remaining == 0
    return (
        position.model_copy(
            update={
                "amount": remaining,
                "dust": position.dust + dust,
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
    tradable: Tradable | None = None,
) -> bool:
    """Store the fill and move the position, atomically. False if already recorded.
    `protect` is the (stop-loss, take-profit) a position opened by this fill starts with;
    `tradable` the market's minimums, below which a sell's remainder is dust."""
    for _ in range(20):
        try:
            with store.atomic():
                if not store.add_fill(fill):
                    return False
                current = _position_for(store, fill)
                if current is None and fill.side is Side.SELL:
                    store.append_events([_untracked_sell(fill)])
                    _add_to_daily(store, fill, Decimal("0"), closed=False)
                    return True
                expected = current.version if current else 0
                updated, event_types = _apply(current, fill, protect, tradable)
                realized = updated.realized_pnl - (current.realized_pnl if current else Decimal(0))
                _add_to_daily(
                    store, fill, realized, closed=EventType.POSITION_CLOSED in event_types
                )
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


def fill_day(fill: Fill) -> str:
    """The UTC day a fill belongs to, by the exchange's clock (market time in replays)."""
    moment = (
        datetime.fromtimestamp(fill.timestamp / 1000, tz=UTC) if fill.timestamp > 0 else utcnow()
    )
    return moment.date().isoformat()


def daily_pnl_key(day: str) -> str:
    return f"{DAILY_PNL_PREFIX}{day}"


def _currency_entry(doc: dict[str, Any], quote: str) -> dict[str, str]:
    currencies: dict[str, dict[str, str]] = doc.setdefault("currencies", {})
    return currencies.setdefault(
        quote, {"realized_pnl": "0", "fees": "0", "net": "0", "unrealized_pnl": "0"}
    )


def _add_to_daily(store: Store, fill: Fill, realized: Decimal, *, closed: bool) -> None:
    """Add one fill to its day's PnL document (inside the fill's transaction: exactly once)."""
    day = fill_day(fill)
    key = daily_pnl_key(day)
    current = store.get_state(key)
    doc, version = (dict(current[0]), current[1]) if current else ({}, 0)
    doc.setdefault("date", day)
    doc["mode"] = current_mode().value
    quote = fill.symbol.partition("/")[2]
    entry = _currency_entry(doc, quote)
    entry["realized_pnl"] = str(Decimal(entry["realized_pnl"]) + realized)
    entry["fees"] = str(Decimal(entry["fees"]) + fee_in_quote(fill))
    entry["net"] = str(Decimal(entry["realized_pnl"]) - Decimal(entry["fees"]))
    doc["fills"] = int(doc.get("fills", 0)) + 1
    doc["positions_closed"] = int(doc.get("positions_closed", 0)) + (1 if closed else 0)
    doc["updated_at"] = utcnow().isoformat()
    store.put_state(key, doc, expected_version=version)


def record_unrealized(store: Store, day: str, unrealized: Mapping[str, Decimal]) -> None:
    """The position monitor's latest mark-to-market, per quote currency, on `day`'s document."""
    key = daily_pnl_key(day)
    for _ in range(20):
        current = store.get_state(key)
        doc, version = (dict(current[0]), current[1]) if current else ({}, 0)
        doc.setdefault("date", day)
        doc["mode"] = current_mode().value
        doc.setdefault("fills", 0)
        doc.setdefault("positions_closed", 0)
        for entry in (doc.get("currencies") or {}).values():
            entry["unrealized_pnl"] = "0"
        for quote, amount in unrealized.items():
            _currency_entry(doc, quote)["unrealized_pnl"] = str(amount)
        doc["updated_at"] = utcnow().isoformat()
        try:
            store.put_state(key, doc, expected_version=version)
            return
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"could not record unrealized PnL on {key}: it kept changing")


def daily_pnl(store: Store, day: str) -> dict[str, Any] | None:
    """The day's PnL document (shape in the module docstring), or None if nothing happened."""
    found = store.get_state(daily_pnl_key(day))
    return found[0] if found else None
