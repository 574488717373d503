"""Position monitoring: mark every open position to market, keep the day's unrealized PnL for
the daily loss limit, and exit on stop-loss, take-profit or trailing-stop hits.

Trailing stops: a position without one takes its symbol's (`trading.trailing`, a live
setting, else the strategy profile's `trailing`) when first marked. Once the high since entry
reaches the entry plus the activation offset, each pass raises the stop-loss to the distance
below the high, never lowers it (one SLTP_CREATED event when it activates); a native stop
order is then replaced by protection (kestrel.execution.protection) at the next sync pass.

Exits are market orders through `kestrel.execution.orders.place`, whose client order id is derived
from
the position and an attempt number (a refused or canceled exit can be retried, a live one is
never duplicated). Placing an exit first cancels the position's protective orders (OCO).
A stop-loss hit is left to the exchange when a native stop-loss order is live for the
position: it executes there, and selling here too would only be refused (the stop holds the
coins). The position becomes CLOSED, with realized PnL and fees, when the exit's fills are
recorded (at once from the create response, or by the order sync).

An exit sells what the position holds, but never more than the exchange holds for it (its
free balance plus what our own protective orders reserve: the exit cancels them first), so a
wallet that holds less than the books never earns a refusal. A position whose sellable amount
is below the market's minimum amount or notional at the current price cannot be sold at all:
it is marked DUST (`Position.unsellable`, one TRADE_BLOCKED event per position) and no exit is
sent, so no refusal feeds the circuit breaker and no pass repeats a message. It stays open and
marked to market; a later buy that makes it sellable, or a price that does, clears the mark.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.books.ledger import record_unrealized
from kestrel.books.wallet import check_wallet_mode
from kestrel.errors import ConcurrentUpdate, ConfigError
from kestrel.execution.lease import LeaseBusy, symbol_lease
from kestrel.execution.orders import PROTECTIVE_ROLES, place
from kestrel.execution.trailing import activation_event, ratchet, trailing_level
from kestrel.ids import client_order_id, installation_id
from kestrel.mode import current_mode
from kestrel.models import (
    LIVE_STATUSES,
    Event,
    EventType,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Reason,
    ReasonCode,
    Side,
    utcnow,
)
from kestrel.money import to_decimal
from kestrel.runtime import Runtime
from kestrel.strategy.resolve import trailing_for

log = logging.getLogger(__name__)


class MonitorReport(BaseModel):
    marked: int = 0
    unrealized_pnl: dict[str, str] = Field(default_factory=dict)
    exits: dict[str, str] = Field(default_factory=dict, description="symbol -> reason code")
    deferred: dict[str, str] = Field(
        default_factory=dict, description="symbol -> why no exit was sent"
    )
    errors: dict[str, str] = Field(default_factory=dict)


def exit_reason(position: Position, price: Decimal) -> Reason | None:
    if position.stop_loss is not None and price <= position.stop_loss:
        if trailing_level(position) is not None:
            return Reason(
                code=ReasonCode.TRAILING_STOP_HIT,
                detail=f"price {price} <= trailing stop {position.stop_loss} "
                f"(high {position.high_water_mark})",
            )
        return Reason(
            code=ReasonCode.STOP_LOSS_HIT,
            detail=f"price {price} <= stop-loss {position.stop_loss}",
        )
    if position.take_profit is not None and price >= position.take_profit:
        return Reason(
            code=ReasonCode.TAKE_PROFIT_HIT,
            detail=f"price {price} >= take-profit {position.take_profit}",
        )
    return None


def _trailing_config(rt: Runtime, position: Position) -> dict[str, Decimal]:
    """The symbol's trailing stop (profile or live setting) for a position that has none
    yet, as Position fields; empty when it is off. A position keeps what it took, like its
    stop-loss and take-profit; `kestrel order move-stop` changes an open position's."""
    if position.trailing_stop_pct is not None:
        return {}
    try:
        trailing = trailing_for(rt.settings, position.symbol)
    except ConfigError as exc:  # never let a config problem stop the stop-loss watch
        log.warning("trailing stop for %s not armed: %s", position.symbol, exc)
        return {}
    if trailing is None:
        return {}
    return {
        "trailing_stop_pct": trailing.distance_pct / 100,
        "trailing_activation_pct": trailing.activation_pct / 100,
    }


def _mark(rt: Runtime, position: Position, price: Decimal) -> Position:
    """Mark to market: last price, high-water mark, the trailing stop armed and ratcheted."""
    high = max(position.high_water_mark or price, price)
    update = {"last_price": price, "high_water_mark": high, "updated_at": utcnow()}
    marked = position.model_copy(update={**update, **_trailing_config(rt, position)})
    marked = ratchet(marked, rt.market(position.symbol).price_tick)
    activated = trailing_level(position) is None and trailing_level(marked) is not None
    try:
        return rt.store.save_position(
            marked,
            expected_version=position.version,
            events=[activation_event(marked)] if activated else [],
        )
    except ConcurrentUpdate:
        return position  # a fill moved it meanwhile; the next run marks it


def _exit_orders(rt: Runtime, position: Position) -> list[Order]:
    return [
        o
        for o in rt.store.list_orders(symbol=position.symbol, roles=(OrderRole.EXIT,))
        if o.position_id == position.position_id
    ]


def _native_stop_covers(rt: Runtime, position: Position, price: Decimal) -> bool:
    """A stop-loss order rests on the exchange at or above `price`: it triggers there, and
    selling here too would only be refused (the stop holds the coins). A native stop below
    the price (a trailing or moved stop not replaced yet) does not cover the exit."""
    return any(
        o.position_id == position.position_id
        and o.status is not OrderStatus.NEW
        and o.stop_price is not None
        and o.stop_price >= price
        for o in rt.store.list_orders(
            symbol=position.symbol, statuses=LIVE_STATUSES, roles=(OrderRole.STOP_LOSS,)
        )
    )


def _held_for_exit(rt: Runtime, position: Position) -> Decimal:
    """What the exchange holds that an exit of `position` can sell: the free balance of the
    base asset plus what our own live protective orders reserve (the exit cancels them
    before it sends). One balance request, made only when an exit is due."""
    base = position.symbol.partition("/")[0]
    free = to_decimal((rt.exchange.fetch_balance().get(base) or {}).get("free") or 0)
    reserved = sum(
        (
            o.amount - o.filled
            for o in rt.store.list_orders(
                symbol=position.symbol, statuses=LIVE_STATUSES, roles=PROTECTIVE_ROLES
            )
            if o.exchange_order_id
        ),
        Decimal("0"),
    )
    return free + reserved


def _exit_amount(rt: Runtime, position: Position, price: Decimal) -> tuple[Decimal, str | None]:
    """The amount an exit sells (the position, never more than the exchange holds for it,
    truncated to the market's precision), and why it cannot be sold (None when it can)."""
    market = rt.market(position.symbol)
    amount = market.amount_to_precision(position.amount)
    if not market.is_dust(amount, price):  # else no need to ask the exchange: it is dust
        amount = min(amount, market.amount_to_precision(_held_for_exit(rt, position)))
    problem = market.size_problem(amount, price)
    return amount, None if problem is None else f"{problem.code.value}: {problem.detail}"


def _set_unsellable(
    rt: Runtime, position: Position, why: str | None, events: list[Event] | None = None
) -> Position:
    """Set or clear the DUST mark (with its events, in the same write)."""
    update = position.model_copy(update={"unsellable": why, "updated_at": utcnow()})
    try:
        return rt.store.save_position(
            update, expected_version=position.version, events=events or []
        )
    except ConcurrentUpdate:
        return position  # a fill moved it meanwhile; the next pass looks again


def _mark_dust(rt: Runtime, position: Position, reason: Reason, amount: Decimal, why: str) -> None:
    """Mark the position DUST, once: no order (a refusal would count towards the circuit
    breaker, and every pass would send another), one event per position (its id is)."""
    if position.unsellable:
        return
    event = Event(
        event_id=f"dust:{position.position_id}",
        type=EventType.TRADE_BLOCKED,
        mode=current_mode(),
        symbol=position.symbol,
        reasons=[why.partition(":")[0], reason.code.value],
        message=(
            f"{position.symbol}: {reason.detail}, but the position cannot be sold: "
            f"{why.partition(': ')[2]} ({position.amount} held by the books, {amount} "
            "sellable). Marked DUST: no exit is sent until a buy or the price makes it "
            "sellable again."
        ),
        data={"action": "SELL", "position_id": position.position_id, "amount": str(amount)},
    )
    _set_unsellable(rt, position, why, [event])


def _exit(rt: Runtime, position: Position, reason: Reason, price: Decimal) -> Order | None:
    """Send (or finish) the position's exit; None when it cannot be sold (marked DUST)."""
    previous = _exit_orders(rt, position)
    live = [o for o in previous if o.status in LIVE_STATUSES]
    if live:
        return place(rt.store, rt.exchange, live[-1])  # resolve / finish the one in flight
    amount, unsellable = _exit_amount(rt, position, price)
    if unsellable is not None:
        _mark_dust(rt, position, reason, amount, unsellable)
        return None
    if position.unsellable:
        position = _set_unsellable(rt, position, None)
    mode = current_mode()
    attempt = f"exit|{position.position_id}|{len(previous)}"
    cid = client_order_id(
        mode, attempt, position.symbol, OrderRole.EXIT, installation=installation_id(rt.store)
    )
    intent = Order(
        client_order_id=cid,
        mode=mode,
        exchange=rt.exchange.id,
        symbol=position.symbol,
        side=Side.SELL,
        type=OrderType.MARKET,
        role=OrderRole.EXIT,
        amount=amount,
        reference_price=position.last_price,
        position_id=position.position_id,
        reason=reason.code.value,
    )
    if rt.store.get_order(cid) is None:
        rt.store.append_events(
            [
                Event(
                    event_id=f"decision:{cid}",
                    type=EventType.TRADE_DECIDED,
                    mode=mode,
                    symbol=position.symbol,
                    client_order_id=cid,
                    reasons=[reason.code.value],
                    message=reason.detail,
                    data={"action": "SELL", "position_id": position.position_id},
                )
            ]
        )
    return place(rt.store, rt.exchange, intent)


def _dust_at(rt: Runtime, position: Position, price: Decimal) -> bool:
    market = rt.market(position.symbol)
    return market.is_dust(market.amount_to_precision(position.amount), price)


def _day(rt: Runtime, symbol: str | None) -> str:
    """Market time in DEMO replays, the wall clock otherwise."""
    if symbol is not None:
        try:
            stamp = rt.now_ms(symbol)
            return datetime.fromtimestamp(stamp / 1000, tz=UTC).date().isoformat()
        except Exception:  # a feed without this symbol: fall back to the wall clock
            pass
    return utcnow().date().isoformat()


def monitor_positions(rt: Runtime) -> MonitorReport:
    check_wallet_mode(rt.store, rt.exchange, "position monitor")
    report = MonitorReport()
    unrealized: dict[str, Decimal] = defaultdict(lambda: Decimal("0"))
    positions = rt.store.list_positions(status=PositionStatus.OPEN)
    for position in positions:
        try:
            price = to_decimal(rt.exchange.fetch_ticker(position.symbol)["last"])
            position = _mark(rt, position, price)
            report.marked += 1
            pnl = position.unrealized_pnl(price)
            report.unrealized_pnl[position.symbol] = str(pnl)
            unrealized[position.symbol.partition("/")[2]] += pnl
            reason = exit_reason(position, price)
            if reason is None or position.amount <= 0:
                if position.unsellable and not _dust_at(rt, position, price):
                    _set_unsellable(rt, position, None)  # grown, or the price recovered
                continue
            stop_hit = reason.code in (ReasonCode.STOP_LOSS_HIT, ReasonCode.TRAILING_STOP_HIT)
            if stop_hit and _native_stop_covers(rt, position, price):
                report.deferred[position.symbol] = "stop-loss order live on the exchange"
                continue
            with symbol_lease(rt.store, rt.exchange.id, position.symbol, "position monitor"):
                order = _exit(rt, position, reason, price)
            if order is None:
                report.deferred[position.symbol] = "DUST: cannot be sold"
            else:
                report.exits[position.symbol] = f"{reason.code.value}: {order.status.value}"
        except LeaseBusy as busy:  # another run is trading it: look again next pass
            report.deferred[position.symbol] = str(busy)
        except Exception as exc:
            log.warning("monitoring %s failed: %s", position.symbol, exc)
            report.errors[position.symbol] = f"{type(exc).__name__}: {exc}"
    day = _day(rt, positions[0].symbol if positions else None)
    try:
        record_unrealized(rt.store, day, unrealized)
    except ConcurrentUpdate as exc:
        report.errors["daily_pnl"] = str(exc)
    return report
