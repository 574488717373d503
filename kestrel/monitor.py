"""Position monitoring: mark every open position to market, keep the day's unrealized PnL for
the daily loss limit, and exit on stop-loss, take-profit or trailing-stop hits.

Exits are market orders through `kestrel.orders.place`, whose client order id is derived from
the position and an attempt number (a refused or canceled exit can be retried, a live one is
never duplicated). Placing an exit first cancels the position's protective orders (OCO).
A stop-loss hit is left to the exchange when a native stop-loss order is live for the
position: it executes there, and selling here too would only be refused (the stop holds the
coins). The position becomes CLOSED, with realized PnL and fees, when the exit's fills are
recorded (at once from the create response, or by the order sync).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.errors import ConcurrentUpdate
from kestrel.ids import client_order_id, installation_id
from kestrel.lease import LeaseBusy, symbol_lease
from kestrel.ledger import record_unrealized
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
from kestrel.money import round_down_to_step, to_decimal
from kestrel.orders import place
from kestrel.runtime import Runtime
from kestrel.wallet import check_wallet_mode

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
        return Reason(
            code=ReasonCode.STOP_LOSS_HIT,
            detail=f"price {price} <= stop-loss {position.stop_loss}",
        )
    if position.take_profit is not None and price >= position.take_profit:
        return Reason(
            code=ReasonCode.TAKE_PROFIT_HIT,
            detail=f"price {price} >= take-profit {position.take_profit}",
        )
    if position.trailing_stop_pct is not None and position.high_water_mark is not None:
        trail = position.high_water_mark * (1 - position.trailing_stop_pct)
        if price <= trail:
            return Reason(
                code=ReasonCode.TRAILING_STOP_HIT,
                detail=f"price {price} <= trailing stop {trail} (high {position.high_water_mark})",
            )
    return None


def _mark(rt: Runtime, position: Position, price: Decimal) -> Position:
    high = max(position.high_water_mark or price, price)
    marked = position.model_copy(
        update={"last_price": price, "high_water_mark": high, "updated_at": utcnow()}
    )
    try:
        return rt.store.save_position(marked, expected_version=position.version)
    except ConcurrentUpdate:
        return position  # a fill moved it meanwhile; the next run marks it


def _exit_orders(rt: Runtime, position: Position) -> list[Order]:
    return [
        o
        for o in rt.store.list_orders(symbol=position.symbol, roles=(OrderRole.EXIT,))
        if o.position_id == position.position_id
    ]


def _native_stop_live(rt: Runtime, position: Position) -> bool:
    return any(
        o.position_id == position.position_id and o.status is not OrderStatus.NEW
        for o in rt.store.list_orders(
            symbol=position.symbol, statuses=LIVE_STATUSES, roles=(OrderRole.STOP_LOSS,)
        )
    )


def _exit(rt: Runtime, position: Position, reason: Reason) -> Order | None:
    previous = _exit_orders(rt, position)
    live = [o for o in previous if o.status in LIVE_STATUSES]
    if live:
        return place(rt.store, rt.exchange, live[-1])  # resolve / finish the one in flight
    market = rt.market(position.symbol)
    amount = round_down_to_step(position.amount, market.amount_step)
    if amount <= 0 or amount < market.min_amount:
        return None
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
                continue
            if reason.code is ReasonCode.STOP_LOSS_HIT and _native_stop_live(rt, position):
                report.deferred[position.symbol] = "stop-loss order live on the exchange"
                continue
            with symbol_lease(rt.store, rt.exchange.id, position.symbol, "position monitor"):
                order = _exit(rt, position, reason)
            if order is None:
                report.deferred[position.symbol] = "below the market minimum: cannot exit"
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
