"""Order sync: bring every live order in the store to the exchange's confirmed truth.

An order missing from open orders is never assumed canceled. Its final state is confirmed
from order history, else from trade history; until then it stays as it is and is retried.
Requests grow with the symbols that have live orders plus the orders that vanished.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.exchange.adapter import trades_of
from kestrel.exchange.base import ExchangeClient
from kestrel.models import LIVE_STATUSES, Order, OrderStatus, StatusSource, utcnow
from kestrel.orders import absorb, find_remote, mark, trades_for_order
from kestrel.store.base import Store

log = logging.getLogger(__name__)


class SyncReport(BaseModel):
    symbols: list[str] = Field(default_factory=list)
    checked: int = 0
    changed: dict[str, str] = Field(default_factory=dict, description="client id -> new status")
    unresolved: list[str] = Field(default_factory=list)


def _matches(order: Order, remote: dict[str, Any]) -> bool:
    if remote.get("clientOrderId") == order.client_order_id:
        return True
    return bool(order.exchange_order_id) and str(remote.get("id")) == order.exchange_order_id


def _from_trade_history(exchange: ExchangeClient, order: Order) -> dict[str, Any] | None:
    """A synthetic ccxt order built from trades, only when they account for the full amount."""
    if not order.exchange_order_id:
        return None
    trades = trades_for_order(exchange, order)
    fills = trades_of(order, trades)
    filled = sum((f.amount for f in fills), Decimal("0"))
    if filled < order.amount:
        return None
    cost = sum((f.amount * f.price for f in fills), Decimal("0"))
    return {
        "id": order.exchange_order_id,
        "clientOrderId": order.client_order_id,
        "status": "closed",
        "filled": str(filled),
        "average": str(cost / filled),
        "trades": [t for t in trades if str(t.get("order")) == order.exchange_order_id],
    }


def sync_orders(
    store: Store, exchange: ExchangeClient, *, intent_grace_s: float = 300.0
) -> SyncReport:
    report = SyncReport()
    by_symbol: dict[str, list[Order]] = defaultdict(list)
    for order in store.list_orders(statuses=LIVE_STATUSES):
        by_symbol[order.symbol].append(order)
    for symbol, orders in by_symbol.items():
        report.symbols.append(symbol)
        open_remote = exchange.fetch_open_orders(symbol)
        for order in orders:
            report.checked += 1
            result = _sync_one(store, exchange, order, open_remote, intent_grace_s)
            if result is None:
                report.unresolved.append(order.client_order_id)
            elif result.status != order.status or result.filled != order.filled:
                report.changed[order.client_order_id] = result.status.value
    return report


def _sync_one(
    store: Store,
    exchange: ExchangeClient,
    order: Order,
    open_remote: list[dict[str, Any]],
    intent_grace_s: float,
) -> Order | None:
    listed = next((r for r in open_remote if _matches(order, r)), None)
    if listed is not None:
        return absorb(store, exchange, order, listed, StatusSource.OPEN_ORDERS)
    remote = find_remote(exchange, order)
    if remote is not None:
        return absorb(store, exchange, order, remote, StatusSource.ORDER_HISTORY)
    synthetic = _from_trade_history(exchange, order)
    if synthetic is not None:
        return absorb(store, exchange, order, synthetic, StatusSource.TRADE_HISTORY)
    age = (utcnow() - order.created_at).total_seconds()
    if order.status is OrderStatus.NEW and not order.exchange_order_id and age > intent_grace_s:
        # Never acknowledged, absent from open orders, history and trades well past the grace:
        # the send never reached the exchange.
        return mark(
            store,
            order,
            OrderStatus.FAILED,
            StatusSource.ORDER_HISTORY,
            f"not on the exchange {age:.0f}s after the intent",
        )
    log.info("order %s not confirmed yet; will retry", order.client_order_id)
    return None
