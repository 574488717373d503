"""The order lifecycle against an exchange: state is written before and after every call.

- `place`: store the intent (NEW) first; look the client order id up on the exchange before
  (re)sending; send; store what the exchange said. A crash anywhere leaves a NEW intent that
  the next attempt or the order sync resolves by client order id: never a second order.
- `absorb`: fold an exchange report of an order (create response, open orders, order
  history) into the store with its fills, positions and events, in one transaction.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from kestrel.errors import ConcurrentUpdate
from kestrel.exchange.adapter import apply_remote, fill_from_trade, trades_of
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.errors import FailureKind, classify
from kestrel.ledger import record_fill
from kestrel.mode import current_mode
from kestrel.models import (
    Decision,
    Event,
    EventType,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    StatusSource,
    check_transition,
    utcnow,
)
from kestrel.store.base import Store

log = logging.getLogger(__name__)

_EVENT_FOR_STATUS = {
    OrderStatus.OPEN: EventType.ORDER_CREATED,
    OrderStatus.PARTIALLY_FILLED: EventType.ORDER_PARTIALLY_FILLED,
    OrderStatus.FILLED: EventType.ORDER_EXECUTED,
    OrderStatus.CANCELED: EventType.ORDER_CANCELED,
    OrderStatus.REJECTED: EventType.ORDER_REJECTED,
    OrderStatus.FAILED: EventType.ORDER_FAILED,
}


def intent_from_decision(decision: Decision, exchange_id: str) -> Order:
    side = decision.action.side
    if side is None or decision.client_order_id is None:
        raise ValueError(f"decision {decision.action} for {decision.symbol} is not a trade")
    return Order(
        client_order_id=decision.client_order_id,
        mode=current_mode(),
        exchange=exchange_id,
        symbol=decision.symbol,
        side=side,
        type=decision.order_type,
        role=OrderRole.PRIMARY if side is Side.BUY else OrderRole.EXIT,
        amount=decision.amount,
        price=decision.price if decision.order_type is OrderType.LIMIT else None,
        stop_loss=decision.stop_loss,
        take_profit=decision.take_profit,
        cycle_id=decision.cycle_id,
        reason=", ".join(r.code for r in decision.reasons),
    )


def transition_events(before: Order, after: Order) -> list[Event]:
    """Events for what changed; ids are deterministic so a replay stores them once."""
    events = []
    if before.status is OrderStatus.NEW and after.exchange_order_id:
        events.append(_order_event(EventType.ORDER_CREATED, after, "created"))
    changed = after.status != before.status or after.filled != before.filled
    kind = _EVENT_FOR_STATUS.get(after.status)
    if changed and kind is not None and kind is not EventType.ORDER_CREATED:
        suffix = after.status.value
        if after.status is OrderStatus.PARTIALLY_FILLED:
            suffix = f"{suffix}:{after.filled}"
        events.append(_order_event(kind, after, suffix))
    return events


def _order_event(kind: EventType, order: Order, suffix: str) -> Event:
    return Event(
        event_id=f"{order.client_order_id}:{suffix}",
        type=kind,
        mode=order.mode,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        reasons=[order.reason] if order.reason else [],
        message=(
            f"{order.role} {order.side} {order.amount} {order.symbol} {order.type}: {order.status}"
            f" (via {order.status_source})"
        ),
        data={
            "side": order.side.value,
            "role": order.role.value,
            "amount": str(order.amount),
            "filled": str(order.filled),
            "average_price": str(order.average_price) if order.average_price else None,
            "fee_cost": str(order.fee_cost),
            "status": order.status.value,
            "status_source": order.status_source.value,
            "exchange_order_id": order.exchange_order_id,
        },
    )


def save_transition(store: Store, before: Order, after: Order) -> Order:
    check_transition(before.status, after.status)
    return store.update_order(
        after, expected_version=before.version, events=transition_events(before, after)
    )


def find_remote(exchange: ExchangeClient, order: Order) -> dict[str, Any] | None:
    """Ask the exchange for the order by client order id (ccxt: origClientOrderId)."""
    try:
        return exchange.fetch_order(
            order.exchange_order_id or "",
            order.symbol,
            {"clientOrderId": order.client_order_id, "origClientOrderId": order.client_order_id},
        )
    except Exception as exc:
        if classify(exc) is FailureKind.NOT_FOUND:
            return None
        raise


def collect_fills(exchange: ExchangeClient, order: Order, remote: dict[str, Any]) -> list[Fill]:
    """Fills from the report itself, else from trade history when it says something filled."""
    embedded = [t for t in (remote.get("trades") or []) if t.get("id")]
    if embedded:
        return [fill_from_trade(order, trade) for trade in embedded]
    if order.filled <= 0 or not order.exchange_order_id:
        return []
    return trades_of(order, trades_for_order(exchange, order))


def trades_for_order(exchange: ExchangeClient, order: Order) -> list[dict[str, Any]]:
    """The order's trades. No `since`: exchange time is not our clock (a replay runs in
    2019); ccxt's binance asks myTrades by orderId, others return recent trades we filter."""
    return exchange.fetch_my_trades(order.symbol, None, None, {"orderId": order.exchange_order_id})


def absorb(
    store: Store,
    exchange: ExchangeClient,
    order: Order,
    remote: dict[str, Any],
    source: StatusSource,
) -> Order:
    """Fold one exchange report of `order` into the store; returns the stored order."""
    for _ in range(10):
        updated = apply_remote(order, remote, source)
        fills = collect_fills(exchange, updated, remote) if updated.filled > 0 else []
        known = {f.trade_id for f in store.list_fills(client_order_id=order.client_order_id)}
        new_fills = [f for f in fills if f.trade_id not in known]
        all_fees = sum((f.fee_cost for f in fills), Decimal("0")) if fills else order.fee_cost
        fee_currency = fills[0].fee_currency if fills else order.fee_currency
        updated = updated.model_copy(update={"fee_cost": all_fees, "fee_currency": fee_currency})
        unchanged = (updated.status, updated.filled, updated.exchange_order_id) == (
            order.status,
            order.filled,
            order.exchange_order_id,
        )
        if unchanged and not new_fills:
            return order
        try:
            with store.atomic():
                for fill in new_fills:
                    record_fill(store, fill, (order.stop_loss, order.take_profit))
                return save_transition(store, order, updated)
        except ConcurrentUpdate:
            fresh = store.get_order(order.client_order_id)
            if fresh is None:
                raise
            order = fresh
    raise ConcurrentUpdate(f"order {order.client_order_id} kept changing while absorbing")


def mark(
    store: Store, order: Order, status: OrderStatus, source: StatusSource, reason: str
) -> Order:
    after = order.model_copy(
        update={"status": status, "status_source": source, "reason": reason, "updated_at": utcnow()}
    )
    return save_transition(store, order, after)


def place(store: Store, exchange: ExchangeClient, intent: Order) -> Order:
    """Place `intent` at most once. Safe to call again after any failure or crash."""
    stored = store.get_order(intent.client_order_id)
    if stored is None:
        stored = store.insert_order(intent)
    elif stored.status is not OrderStatus.NEW:
        return stored  # already placed and seen: nothing to do
    else:
        remote = find_remote(exchange, stored)  # a previous attempt may have reached it
        if remote is not None:
            return absorb(store, exchange, stored, remote, StatusSource.ORDER_HISTORY)
    params: dict[str, Any] = {"clientOrderId": stored.client_order_id}
    if stored.stop_price is not None:
        params["stopPrice"] = float(stored.stop_price)
    try:
        remote = exchange.create_order(
            stored.symbol,
            stored.type.value,
            stored.side.value,
            float(stored.amount),
            float(stored.price) if stored.price is not None else None,
            params,
        )
    except Exception as exc:
        kind = classify(exc)
        if kind is FailureKind.REJECTED:
            log.warning("order %s rejected: %s", stored.client_order_id, exc)
            return mark(store, stored, OrderStatus.REJECTED, StatusSource.CREATE_RESPONSE, str(exc))
        if kind is FailureKind.DUPLICATE:
            remote = find_remote(exchange, stored)
            if remote is not None:
                return absorb(store, exchange, stored, remote, StatusSource.ORDER_HISTORY)
        raise  # transient or unknown: the intent stays NEW; retry or sync resolves it
    return absorb(store, exchange, stored, remote, StatusSource.CREATE_RESPONSE)
