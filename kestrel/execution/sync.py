"""Order sync: bring every live order in the store to the exchange's confirmed truth.

Per symbol that has live orders in the store: one open-orders request. An order listed there
is updated from it (status_source open_orders; its new fills, if any, from its trades). A
stored order missing from it is resolved through order history (the order by client order
id), then trade history (its trades by exchange order id); only a confirmed final state
changes the record, and an order is never marked CANCELED because it is missing. An intent
never sent whose placement has been silent for `intent_grace_s` becomes FAILED (an exit, whose
placement cancels the stop-loss first: at once when nobody holds its symbol's lease, else after
UNSENT_EXIT_GRACE_S); an intent
that was (or may have been) sent is never terminal on our word: `intent_grace_s` after its last
send, with nothing found by its client order id, it becomes UNKNOWN (one alert) and sync keeps
asking until the exchange says what happened.

Trades are fetched once per symbol and pass (`SymbolTrades`), only when an order needs them,
back to the oldest such order's creation, and attributed to orders by exchange order id; an
order whose trades that batch does not account for is still asked for on its own.

Requests per sync: symbols with live orders + (for each order that vanished from open orders)
one order look-up + (for each symbol where an order vanished or shows new fills) one page of
trades (more only past SYNC_TRADES_PAGE trades). Orders that did not change cost nothing
beyond their symbol's open-orders request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.books.wallet import check_wallet_mode
from kestrel.errors import (
    ConcurrentUpdate,
    InvalidExchangePayload,
    InvalidTransition,
    OrderOutcomeUnknown,
)
from kestrel.exchange.adapter import trades_of
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.errors import classify
from kestrel.execution.lease import current_holder, symbol_key
from kestrel.execution.orders import (
    CLOCK_MARGIN_MS,
    absorb,
    attribute_recent_trades,
    crash_point,
    find_remote,
    mark,
    order_alert,
    trades_for_order,
    trades_since,
)
from kestrel.models import (
    LIVE_STATUSES,
    Order,
    OrderRole,
    OrderStatus,
    StatusSource,
    utcnow,
)
from kestrel.money import to_decimal
from kestrel.store.base import Store

log = logging.getLogger(__name__)

# How long an unsent exit's placement may be silent after clearing its way (canceling the
# stop-loss: one store write and one request remain) before sync calls it dead. Well above
# a placement's pace; short, because the position is unprotected meanwhile.
UNSENT_EXIT_GRACE_S = 30.0
#: trades per request when sync reads a symbol's trades (Binance's largest page: the request
#: weighs the same whatever the limit)
SYNC_TRADES_PAGE = 1000


class SyncReport(BaseModel):
    symbols: list[str] = Field(default_factory=list)
    checked: int = 0
    changed: dict[str, str] = Field(default_factory=dict, description="client id -> new status")
    unresolved: list[str] = Field(default_factory=list)
    quarantined: dict[str, str] = Field(
        default_factory=dict, description="client id -> why its report could not be applied"
    )
    errors: dict[str, str] = Field(default_factory=dict, description="symbol -> error")
    protection: dict[str, Any] = Field(
        default_factory=dict, description="what the protection pass after the sync did"
    )


class SymbolTrades:
    """The account's trades of one symbol, read at most once per sync pass and only when an
    order asks for them: one request per symbol instead of one per order (with ccxt's rate
    limiter a trades request costs five order look-ups). They reach back to the creation of
    the oldest order that may need them (`needing`), less the clock margin: no trade of those
    orders is older. Orders take theirs by exchange order id (`trades_of`); a trade of an
    exchange order the store does not know is there too (`attribute_recent_trades`)."""

    def __init__(self, exchange: ExchangeClient, symbol: str, needing: list[Order]) -> None:
        self.exchange, self.symbol = exchange, symbol
        oldest = min((o.created_at for o in needing), default=utcnow())
        self.since_ms = int(oldest.timestamp() * 1000) - CLOCK_MARGIN_MS
        self._trades: list[dict[str, Any]] | None = None

    def get(self) -> list[dict[str, Any]]:
        if self._trades is None:
            self._trades = trades_since(self.exchange, self.symbol, self.since_ms, SYNC_TRADES_PAGE)
        return self._trades

    def of(self, order: Order) -> list[dict[str, Any]]:
        """`order`'s trades in the batch (by exchange order id; none for an order not linked)."""
        if not order.exchange_order_id:
            return []
        return [t for t in self.get() if str(t.get("order")) == order.exchange_order_id]


def _shows_new_fills(order: Order, remote: dict[str, Any]) -> bool:
    """The report says more filled than we recorded: its trades are wanted. (A malformed
    figure says yes: fetching trades is harmless, and `absorb` rejects the report itself.)"""
    try:
        return to_decimal(remote.get("filled") or 0) > order.filled
    except Exception:
        return True


def _may_need_trades(order: Order, listed: dict[str, Any] | None) -> bool:
    if listed is not None:
        return _shows_new_fills(order, listed)
    return order.exchange_order_id is not None or order.send_attempts > 0


def _listed(order: Order, by_client: dict[str, Any], by_id: dict[str, Any]) -> Any:
    found = by_client.get(order.client_order_id)
    if found is None and order.exchange_order_id:
        found = by_id.get(order.exchange_order_id)
    return found


def _from_trade_history(
    exchange: ExchangeClient, order: Order, batch: SymbolTrades
) -> dict[str, Any] | None:
    """A synthetic ccxt order built from the order's trades: 'closed' when they account for
    the full amount, else 'open' with what they show (so the fills are recorded and the
    position follows) when that is more than we have; None when they add nothing. Its trades
    come from the symbol's batch; when the batch has none (it is bounded), from the order's
    own trade history."""
    if not order.exchange_order_id:
        return None
    trades = batch.of(order) or [
        t
        for t in trades_for_order(exchange, order)
        if str(t.get("order")) == order.exchange_order_id
    ]
    fills = trades_of(order, trades)
    filled = sum((f.amount for f in fills), Decimal("0"))
    if filled <= order.filled:
        return None
    cost = sum((f.amount * f.price for f in fills), Decimal("0"))
    return {
        "id": order.exchange_order_id,
        "clientOrderId": order.client_order_id,
        "status": "closed" if filled >= order.amount else "open",
        "filled": str(filled),
        "average": str(cost / filled),
        "trades": trades,
    }


def sync_orders(
    store: Store,
    exchange: ExchangeClient,
    *,
    intent_grace_s: float = 300.0,
    symbols: list[str] | None = None,
) -> SyncReport:
    """One pass over every live order (optionally only `symbols`). Errors on one symbol are
    reported and do not stop the others."""
    check_wallet_mode(store, exchange, "order sync")
    report = SyncReport()
    by_symbol: dict[str, list[Order]] = defaultdict(list)
    for order in store.list_orders(statuses=LIVE_STATUSES):
        if symbols is None or order.symbol in symbols:
            by_symbol[order.symbol].append(order)
    for symbol, orders in by_symbol.items():
        report.symbols.append(symbol)
        try:
            _sync_symbol(store, exchange, symbol, orders, intent_grace_s, report)
        except Exception as exc:
            log.warning("order sync for %s stopped: %s (%s)", symbol, exc, classify(exc))
            report.errors[symbol] = f"{type(exc).__name__}: {exc}"
    return report


def _sync_symbol(
    store: Store,
    exchange: ExchangeClient,
    symbol: str,
    orders: list[Order],
    intent_grace_s: float,
    report: SyncReport,
) -> None:
    open_remote = exchange.fetch_open_orders(symbol)
    crash_point("sync:open_orders_fetched")
    by_client = {str(r.get("clientOrderId")): r for r in open_remote if r.get("clientOrderId")}
    by_id = {str(r.get("id")): r for r in open_remote if r.get("id")}
    needing = [o for o in orders if _may_need_trades(o, _listed(o, by_client, by_id))]
    batch = SymbolTrades(exchange, symbol, needing)
    for order in orders:
        report.checked += 1
        fresh = store.get_order(order.client_order_id)
        if fresh is None or fresh.is_final:
            continue  # resolved meanwhile (e.g. by a placement retry)
        listed = _listed(fresh, by_client, by_id)
        try:
            if listed is not None:
                trades = batch.get() if _shows_new_fills(fresh, listed) else None
                result: Order | None = absorb(
                    store, exchange, fresh, listed, StatusSource.OPEN_ORDERS, trades=trades
                )
            else:
                result = _resolve_vanished(store, exchange, fresh, intent_grace_s, batch)
        except (OrderOutcomeUnknown, ConcurrentUpdate) as exc:  # this order only: next pass
            log.info("%s", exc)
            result = None
        except (InvalidExchangePayload, InvalidTransition) as exc:  # a bad record: set aside
            _quarantine(store, fresh, exc, report)
            continue
        crash_point("sync:order_resolved")
        if result is None or (result.status in LIVE_STATUSES and listed is None):
            report.unresolved.append(fresh.client_order_id)
        if result is not None and (result.status != fresh.status or result.filled != fresh.filled):
            report.changed[fresh.client_order_id] = result.status.value


def _quarantine(store: Store, order: Order, problem: Exception, report: SyncReport) -> None:
    """A report of `order` that cannot be applied (a status ccxt does not know, a malformed
    field, an impossible transition): the order is left as it is, one alert names it, and the
    pass goes on with the other orders. The next pass looks again."""
    why = f"{type(problem).__name__}: {problem}"
    log.warning("order %s set aside in this sync pass: %s", order.client_order_id, why)
    report.quarantined[order.client_order_id] = why
    digest = hashlib.sha256(why.encode()).hexdigest()[:12]
    store.append_events(
        [
            order_alert(
                order,
                f"quarantined:{digest}",
                "QUARANTINED",
                f"order {order.client_order_id} ({order.symbol}, {order.status}) was not "
                f"updated: the exchange's report of it cannot be applied ({why}). The other "
                "orders were synced; this one is looked at again on every pass.",
                {"status": order.status.value, "problem": why},
            )
        ]
    )


def _resolve_vanished(
    store: Store, exchange: ExchangeClient, order: Order, intent_grace_s: float, batch: SymbolTrades
) -> Order | None:
    """An order not in open orders: order history, then trade history; else leave it."""
    remote = find_remote(exchange, order)
    if remote is not None:
        trades = batch.get() if _shows_new_fills(order, remote) else None
        return absorb(store, exchange, order, remote, StatusSource.ORDER_HISTORY, trades=trades)
    synthetic = _from_trade_history(exchange, order, batch)
    if synthetic is not None:
        return absorb(store, exchange, order, synthetic, StatusSource.TRADE_HISTORY)
    if order.status in (OrderStatus.NEW, OrderStatus.UNKNOWN) and not order.exchange_order_id:
        return _unacknowledged_intent(store, exchange, order, intent_grace_s, batch)
    log.info("order %s not confirmed yet; will retry", order.client_order_id)
    return None


def _unacknowledged_intent(
    store: Store, exchange: ExchangeClient, order: Order, intent_grace_s: float, batch: SymbolTrades
) -> Order | None:
    """An intent the exchange does not show by its client order id (just asked).

    Never sent: FAILED once its placement has been silent for the grace (it died before
    sending; see `_unsent_intent`). Sent, or maybe sent: never terminal, because a slow or
    retried send can still arrive and fill. Once `intent_grace_s` has passed since the LAST
    send it becomes UNKNOWN (one alert); sync keeps asking, and a late answer still lands."""
    now = utcnow()
    if order.send_attempts == 0:
        return _unsent_intent(store, order, intent_grace_s, now)
    waited = (now - (order.last_sent_at or order.created_at)).total_seconds()
    if waited <= intent_grace_s:
        return None  # a send may still be on its way
    # Binance hides just-closed orders from lookups for a while: their trades may show it.
    resolved = attribute_recent_trades(store, exchange, order, batch.get())
    if resolved is not None or order.status is OrderStatus.UNKNOWN:
        return resolved  # UNKNOWN already alerted: keep asking on every pass
    return mark(
        store,
        order,
        OrderStatus.UNKNOWN,
        StatusSource.SYNC_GRACE,
        f"sent {order.send_attempts} time(s), the last {waited:.0f}s ago, and the exchange "
        "shows no order with this client order id yet (open orders, order and trade history "
        "checked); it may still appear, so it is not resent and order sync keeps looking. "
        "Check the exchange's order history for this client order id",
    )


def _unsent_intent(
    store: Store, order: Order, intent_grace_s: float, now: datetime
) -> Order | None:
    """An intent never sent is FAILED once its placement has shown no sign of life (its last
    write) for the grace. An exit's grace is short: its placement cancels the position's
    stop-loss before sending, so while it waits the position is naked and the protection pass
    (which waits for live exits) cannot put the stop back. Every placement runs under its
    symbol's lease (kestrel.execution.lease), so when nobody holds that lease the exit's placement
    is
    over (it crashed, or gave up before sending) and it is failed at once: the protection pass
    that follows this sync puts the stop back. While a live holder has the lease, the placement
    may still be cancelling stops, and `UNSENT_EXIT_GRACE_S` bounds the wait (a holder that
    stalls)."""
    grace = intent_grace_s
    if order.role is OrderRole.EXIT:
        placing = current_holder(store, symbol_key(order.exchange, order.symbol), now=lambda: now)
        grace = min(grace, UNSENT_EXIT_GRACE_S) if placing is not None else 0.0
    idle = (now - order.updated_at).total_seconds()  # its placement's last write
    if idle <= grace:
        return None  # its placement may still be running
    return mark(
        store,
        order,
        OrderStatus.FAILED,
        StatusSource.SYNC_GRACE,
        f"never sent: its placement stopped {idle:.0f}s ago before sending"
        + ("; the position's protection is put back" if order.role is OrderRole.EXIT else ""),
    )


def poll[T](
    step: Callable[[], T],
    *,
    window_s: float,
    poll_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[T]:
    """Run `step` every `poll_s` seconds until `window_s` has passed (at least once): the
    shape of a deployment run that keeps the store within seconds of the exchange while the
    scheduler only starts runs every minute. Bounded, so memory and leases stay bounded."""
    results: list[T] = []
    deadline = clock() + window_s
    while True:
        started = clock()
        results.append(step())
        next_at = started + poll_s
        if next_at > deadline or should_stop():
            return results
        sleep(max(0.0, next_at - clock()))
