"""Position monitoring: mark every open position to market and exit on stop-loss,
take-profit or trailing-stop hits.

Exits are ordinary market orders through `kestrel.orders.place`, with a client order id
derived from the position, so a position is exited at most once however often this runs.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.errors import ConcurrentUpdate
from kestrel.ids import client_order_id
from kestrel.mode import current_mode
from kestrel.models import (
    Event,
    EventType,
    Order,
    OrderRole,
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


class MonitorReport(BaseModel):
    marked: int = 0
    unrealized_pnl: dict[str, str] = Field(default_factory=dict)
    exits: dict[str, str] = Field(default_factory=dict, description="symbol -> reason code")


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


def _exit(rt: Runtime, position: Position, reason: Reason) -> Order:
    market = rt.market(position.symbol)
    mode = current_mode()
    cid = client_order_id(mode, f"exit|{position.position_id}", position.symbol, OrderRole.EXIT)
    intent = Order(
        client_order_id=cid,
        mode=mode,
        exchange=rt.exchange.id,
        symbol=position.symbol,
        side=Side.SELL,
        type=OrderType.MARKET,
        role=OrderRole.EXIT,
        amount=round_down_to_step(position.amount, market.amount_step),
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


def monitor_positions(rt: Runtime) -> MonitorReport:
    report = MonitorReport()
    for position in rt.store.list_positions(status=PositionStatus.OPEN):
        price = to_decimal(rt.exchange.fetch_ticker(position.symbol)["last"])
        position = _mark(rt, position, price)
        report.marked += 1
        report.unrealized_pnl[position.symbol] = str(position.unrealized_pnl(price))
        reason = exit_reason(position, price)
        if reason is not None and position.amount > 0:
            order = _exit(rt, position, reason)
            report.exits[position.symbol] = f"{reason.code.value}: {order.status.value}"
    return report
