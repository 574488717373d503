"""The order lifecycle against an exchange: state is written before and after every call.

- `place`: round the intent to the market's precision and check its minimums (a refusal is
  recorded, never sent); store the intent (NEW) first; if an earlier attempt may have reached
  the exchange, look the client order id up (and, because Binance hides just-closed orders
  from queries for a while, check recent trades for orders we cannot attribute) before
  sending again; count the send; send; store what the exchange said. A crash anywhere leaves a
  NEW intent that the next attempt or the order sync resolves by client order id: never a
  second order.
- `cancel`: cancel and record the confirmed result; "unknown order" is resolved by a lookup
  (it may have filled meanwhile), never read as canceled.
- `absorb`: fold an exchange report of an order (create / cancel response, open orders, order
  history, trade history) into the store with its fills, positions and events, in one
  transaction. The stored `filled` always equals the sum of the recorded fills: a report whose
  trades cannot be seen yet moves the order only as far as its trades go.

Crash points (`crash_point`) let tests kill the process between any two steps.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kestrel.books.ledger import Tradable, record_fill, total_fees, with_fee_rates
from kestrel.books.wallet import check_wallet_mode, refuse
from kestrel.errors import ConcurrentUpdate, DuplicateClientOrderId, OrderOutcomeUnknown
from kestrel.exchange.adapter import apply_remote, fill_from_trade, trades_of
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.ccxt_exchange import market_spec
from kestrel.exchange.errors import FailureKind, classify
from kestrel.execution.lease import Lease, symbol_lease_once
from kestrel.mode import current_mode
from kestrel.models import (
    Decision,
    Event,
    EventType,
    Fill,
    MarketSpec,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    StatusSource,
    check_transition,
    utcnow,
)
from kestrel.money import to_decimal
from kestrel.store.base import Store

log = logging.getLogger(__name__)

CRASH_ENV = "KESTREL_CRASH_AT"
CRASH_EXIT_CODE = 86
PROTECTIVE_ROLES = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)
RECENT_TRADES = 100  # trades per request when looking for trades of unattributed orders
MAX_TRADE_PAGES = 20  # a bound on one lookup; a longer history is logged, not read
CLOCK_MARGIN_MS = 60_000  # the exchange's clock may run ahead of or behind ours

_EVENT_FOR_STATUS = {
    OrderStatus.OPEN: EventType.ORDER_CREATED,
    OrderStatus.PARTIALLY_FILLED: EventType.ORDER_PARTIALLY_FILLED,
    OrderStatus.FILLED: EventType.ORDER_EXECUTED,
    OrderStatus.CANCELED: EventType.ORDER_CANCELED,
    OrderStatus.REJECTED: EventType.ORDER_REJECTED,
    OrderStatus.FAILED: EventType.ORDER_FAILED,
    OrderStatus.UNKNOWN: EventType.ALERT_EMITTED,  # the operator should look: once per order
}


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, when KESTREL_CRASH_AT names this step (tests)."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_EXIT_CODE)


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
        reference_price=decision.price,
        stop_loss=decision.stop_loss,
        take_profit=decision.take_profit,
        cycle_id=decision.cycle_id,
        reason=", ".join(r.code for r in decision.reasons),
    )


# -- events and transitions -------------------------------------------------------------------


def transition_events(before: Order, after: Order) -> list[Event]:
    """Events for what changed; ids are deterministic so a replay stores them once."""
    events = []
    if before.exchange_order_id is None and after.exchange_order_id:
        events.append(order_event(EventType.ORDER_CREATED, after, "created"))
    changed = after.status != before.status or after.filled != before.filled
    kind = _EVENT_FOR_STATUS.get(after.status)
    if changed and kind is not None and kind is not EventType.ORDER_CREATED:
        suffix = after.status.value
        if after.status is OrderStatus.PARTIALLY_FILLED:
            suffix = f"{suffix}:{after.filled}"
        events.append(order_event(kind, after, suffix))
    return events


def order_alert(
    order: Order, suffix: str, reason: str, message: str, data: dict[str, Any]
) -> Event:
    """An alert about one order for the operator (ALERT_EMITTED); its id, `<cid>:<suffix>`,
    makes it fire once however often the condition is seen."""
    return Event(
        event_id=f"{order.client_order_id}:{suffix}",
        type=EventType.ALERT_EMITTED,
        mode=order.mode,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        reasons=[reason],
        message=message,
        data=data,
    )


def order_event(kind: EventType, order: Order, suffix: str) -> Event:
    reasons = [r for r in (order.reason, order.cancel_reason) if r]
    detail = f": {order.cancel_reason}" if order.cancel_reason else ""
    return Event(
        event_id=f"{order.client_order_id}:{suffix}",
        type=kind,
        mode=order.mode,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        reasons=reasons,
        message=(
            f"{order.role} {order.side} {order.amount} {order.symbol} {order.type}: {order.status}"
            f" (via {order.status_source}){detail}"
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
            "position_id": order.position_id,
        },
    )


def save_transition(store: Store, before: Order, after: Order) -> Order:
    check_transition(before.status, after.status)
    return store.update_order(
        after, expected_version=before.version, events=transition_events(before, after)
    )


def mark(
    store: Store,
    order: Order,
    status: OrderStatus,
    source: StatusSource,
    reason: str,
) -> Order:
    """A status we decided ourselves (pre-check refusal, exchange rejection, never sent)."""
    update: dict[str, Any] = {"status": status, "status_source": source, "updated_at": utcnow()}
    if status is OrderStatus.CANCELED:
        update["cancel_reason"] = reason
    else:
        update["reason"] = f"{order.reason}; {reason}" if order.reason else reason
    return save_transition(store, order, order.model_copy(update=update))


# -- reading the exchange ---------------------------------------------------------------------


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


def trades_for_order(exchange: ExchangeClient, order: Order) -> list[dict[str, Any]]:
    """The order's trades. ccxt's binance asks myTrades by orderId (every trade of the order,
    up to 500; Binance refuses orderId with a start time, so this is not paged by time);
    others return recent trades we filter."""
    return exchange.fetch_my_trades(order.symbol, None, None, {"orderId": order.exchange_order_id})


def trades_since(
    exchange: ExchangeClient, symbol: str, since_ms: int, page: int
) -> list[dict[str, Any]]:
    """The account's trades of `symbol` back to `since_ms` (exchange time): the newest page,
    and when that page is full and does not reach back that far, every page from `since_ms`
    forward (ccxt `since`). The newest page comes first because exchange time need not be our
    clock (a replay runs in 2019): a page that already reaches back needs no more requests.
    (Binance serves a day from a start time; an order's trades follow its creation.)"""
    newest = exchange.fetch_my_trades(symbol, None, page)
    if len(newest) < page or min(_trade_ms(t) for t in newest) <= since_ms:
        return newest
    found: dict[str, dict[str, Any]] = {}
    cursor = since_ms
    for _ in range(MAX_TRADE_PAGES):
        batch = exchange.fetch_my_trades(symbol, cursor, page)
        fresh = [t for t in batch if str(t.get("id")) not in found]
        found.update((str(t.get("id")), t) for t in fresh)
        if len(batch) < page or not fresh:
            break
        cursor = max(_trade_ms(t) for t in batch)  # inclusive: the repeats are skipped above
    else:
        log.warning("%s: more than %d pages of trades since %d", symbol, MAX_TRADE_PAGES, since_ms)
    for trade in newest:
        found.setdefault(str(trade.get("id")), trade)
    return sorted(found.values(), key=_trade_ms)


def _trade_ms(trade: dict[str, Any]) -> int:
    return int(trade.get("timestamp") or 0)


def _created_ms(order: Order) -> int:
    """When `order` was stored, in ms, less the clock margin: no trade of it is older."""
    return int(order.created_at.timestamp() * 1000) - CLOCK_MARGIN_MS


def tradable(exchange: ExchangeClient, symbol: str) -> Tradable:
    """The market's smallest sellable amount (for dust); no request once markets are loaded."""
    return market_spec(exchange, symbol)


def fee_rate(exchange: ExchangeClient) -> Callable[[str, str], Decimal | None]:
    """How a fee in a third currency (BNB) is valued: the exchange's last price of
    CURRENCY/QUOTE when the fill is absorbed; None when there is none (the fee then stays
    unvalued, and is said so, rather than counted as zero)."""

    def rate(currency: str, quote: str) -> Decimal | None:
        try:
            last = exchange.fetch_ticker(f"{currency}/{quote}").get("last")
        except Exception as exc:  # no such market, or no answer: not a reason to lose a fill
            log.warning("no %s/%s price to value a fee: %s", currency, quote, exc)
            return None
        return to_decimal(last) if last else None

    return rate


def _embedded_fills(order: Order, remote: dict[str, Any]) -> list[Fill]:
    fallback = remote.get("lastTradeTimestamp") or remote.get("timestamp") or 0
    fills = []
    for trade in remote.get("trades") or []:
        if not trade.get("id"):
            continue
        if not trade.get("timestamp"):
            trade = {**trade, "timestamp": fallback}
        fills.append(fill_from_trade(order, trade))
    return fills


def _unique(fills: list[Fill]) -> list[Fill]:
    seen: set[str] = set()
    out = []
    for fill in fills:
        if fill.trade_id not in seen:
            seen.add(fill.trade_id)
            out.append(fill)
    return out


def absorb(
    store: Store,
    exchange: ExchangeClient,
    order: Order,
    remote: dict[str, Any],
    source: StatusSource,
    *,
    trades: list[dict[str, Any]] | None = None,
    cancel_reason: str | None = None,
) -> Order:
    """Fold one exchange report of `order` into the store; returns the stored order.

    `trades` are trades already fetched for the symbol (saves a request per order). A report
    that is not about this order (see `is_about`) is never applied: the order is looked up by
    its client order id instead."""
    if not is_about(order, remote):
        remote, source = _own_report(store, exchange, order, remote), StatusSource.ORDER_HISTORY
        trades = None
    for _ in range(10):
        updated = apply_remote(order, remote, source)
        recorded = store.list_fills(client_order_id=order.client_order_id)
        known = {f.trade_id for f in recorded}
        have = sum((f.amount for f in recorded), Decimal("0"))
        # The stored order lags its fills only when a recording stopped after storing a fill
        # (a crash on MongoDB without transactions): record them again, applied where missing.
        unsettled = recorded if have > order.filled else []
        new_fills: list[Fill] = []
        if updated.filled > have:
            candidates = _embedded_fills(updated, remote)
            if trades is not None and updated.exchange_order_id:
                candidates += trades_of(updated, trades)
            candidates = [f for f in _unique(candidates) if f.trade_id not in known]
            short = have + sum((f.amount for f in candidates), Decimal("0")) < updated.filled
            if short and updated.exchange_order_id:
                fetched = trades_of(updated, trades_for_order(exchange, updated))
                candidates = [f for f in _unique(candidates + fetched) if f.trade_id not in known]
            new_fills = [with_fee_rates(f, fee_rate(exchange)) for f in candidates]
        total = have + sum((f.amount for f in new_fills), Decimal("0"))
        updated = _settle(order, updated, total)
        fills = recorded + new_fills
        if fills:
            fees = total_fees(fills)  # per currency: never added across currencies
            updated = updated.model_copy(
                update={
                    "fees": fees,
                    "fee_currency": fills[0].fee_currency,
                    "fee_cost": fees.get(fills[0].fee_currency, Decimal("0")),
                    "average_price": sum((f.cost for f in fills), Decimal("0")) / total
                    if total > 0
                    else updated.average_price,
                }
            )
        if cancel_reason and updated.status is OrderStatus.CANCELED:
            updated = updated.model_copy(update={"cancel_reason": cancel_reason})
        unchanged = (updated.status, updated.filled, updated.exchange_order_id) == (
            order.status,
            order.filled,
            order.exchange_order_id,
        )
        if unchanged and not new_fills:
            return order
        limits = tradable(exchange, order.symbol) if new_fills or unsettled else None
        try:
            with store.atomic():
                for fill in [*unsettled, *new_fills]:
                    record_fill(store, fill, (order.stop_loss, order.take_profit), limits)
                return save_transition(store, order, updated)
        except ConcurrentUpdate:
            fresh = store.get_order(order.client_order_id)
            if fresh is None:
                raise
            if fresh.is_final:
                return fresh
            order = fresh
    raise ConcurrentUpdate(f"order {order.client_order_id} kept changing while absorbing")


def is_about(order: Order, remote: dict[str, Any]) -> bool:
    """Whether an exchange report describes `order`: it carries our client order id (ccxt's
    clientOrderId; Binance's cancel reply names ours origClientOrderId), or, for replies that
    carry another client id, its exchange order id is the one a vouched report linked before.
    An exchange order id alone is never trusted for an order not linked yet."""
    info = remote.get("info")
    named = {remote.get("clientOrderId")}
    if isinstance(info, dict):
        named.add(info.get("origClientOrderId"))
    if order.client_order_id in named:
        return True
    linked = order.exchange_order_id
    return linked is not None and str(remote.get("id")) == linked


def _own_report(
    store: Store, exchange: ExchangeClient, order: Order, foreign: dict[str, Any]
) -> dict[str, Any]:
    """The exchange's report of `order`, by its client order id, after a reply that named
    another order (recorded once as an alert, never linked)."""
    named = (
        f"exchange order {foreign.get('id')!r} (client order id {foreign.get('clientOrderId')!r})"
    )
    store.append_events(
        [
            order_alert(
                order,
                f"foreign:{foreign.get('id')}",
                "FOREIGN_REPLY",
                f"the exchange's reply for order {order.client_order_id} describes {named}; "
                "not linked. The order is looked up by its own client order id instead.",
                {"exchange_order_id": str(foreign.get("id"))},
            )
        ]
    )
    unlinked = order.model_copy(update={"exchange_order_id": None})
    found = find_remote(exchange, unlinked)
    if found is None or not is_about(unlinked, found):
        raise OrderOutcomeUnknown(
            f"order {order.client_order_id}: the exchange's reply described {named} and the "
            "exchange does not show ours by its client order id yet; will look again"
        )
    return found


def _settle(before: Order, reported: Order, fills_total: Decimal) -> Order:
    """The status the recorded fills support. The exchange's word is taken as final only when
    its trades account for everything it says filled; until then the order stays live (the
    next sync looks again), and `filled` is what the fills add up to."""
    if fills_total == reported.filled:
        return reported
    if fills_total > reported.filled:  # trades newer than the order report
        status = OrderStatus.FILLED if fills_total >= before.amount else reported.status
        if status is OrderStatus.OPEN:
            status = OrderStatus.PARTIALLY_FILLED
        return reported.model_copy(update={"filled": fills_total, "status": status})
    status = OrderStatus.PARTIALLY_FILLED if fills_total > 0 else OrderStatus.OPEN
    if before.status is OrderStatus.PARTIALLY_FILLED:
        status = OrderStatus.PARTIALLY_FILLED
    log.info(
        "order %s: exchange reports %s filled but its trades show %s; waiting for the trades",
        before.client_order_id,
        reported.filled,
        fills_total,
    )
    return reported.model_copy(update={"filled": fills_total, "status": status})


# -- placing ----------------------------------------------------------------------------------


def prepare_intent(exchange: ExchangeClient, intent: Order) -> tuple[Order, str | None]:
    """The intent rounded to the market's precision, and why it cannot be sent (or None):
    amounts truncate, a limit never trades worse than asked, a stop rounds toward the market
    (MarketSpec); below the minimum amount or the minimum notional the exchange would refuse
    it, so we do not ask."""
    spec: MarketSpec = market_spec(exchange, intent.symbol)
    amount = spec.amount_to_precision(intent.amount)
    side = intent.side.value
    price = spec.limit_price(side, intent.price) if intent.price is not None else None
    stop = spec.stop_price(side, intent.stop_price) if intent.stop_price is not None else None
    reference = price or stop or intent.reference_price
    if reference is None:
        reference = to_decimal(exchange.fetch_ticker(intent.symbol)["last"])
    prepared = intent.model_copy(
        update={"amount": amount, "price": price, "stop_price": stop, "reference_price": reference}
    )
    too_small = spec.size_problem(intent.amount, reference)
    if too_small is None:
        return prepared, None
    return (prepared if amount > 0 else intent), too_small.detail  # an order of 0 is no order


def _insert_refused(store: Store, intent: Order, problem: str) -> Order:
    refused = intent.model_copy(
        update={
            "status": OrderStatus.REJECTED,
            "status_source": StatusSource.PRE_CHECK,
            "reason": f"{intent.reason}; {problem}" if intent.reason else problem,
        }
    )
    try:
        return store.insert_order(
            refused, events=[order_event(EventType.ORDER_REJECTED, refused, "REJECTED")]
        )
    except DuplicateClientOrderId:
        stored = store.get_order(intent.client_order_id)
        assert stored is not None
        return stored


def _create_params(order: Order) -> tuple[str, dict[str, Any]]:
    """ccxt type and params. Stop-losses use ccxt's unified `stopLossPrice` (Binance:
    STOP_LOSS for "market", STOP_LOSS_LIMIT for "limit"); `stopPrice` is the same trigger for
    exchanges (and the paper exchange) that read that name."""
    params: dict[str, Any] = {"clientOrderId": order.client_order_id}
    kind = "limit" if order.type is OrderType.LIMIT else "market"
    if order.stop_price is not None:
        trigger = float(order.stop_price)
        if order.role is OrderRole.TAKE_PROFIT:
            params["takeProfitPrice"] = trigger
        else:
            params["stopLossPrice"] = trigger
            params["stopPrice"] = trigger
    return kind, params


def place(
    store: Store, exchange: ExchangeClient, intent: Order, *, lease: Lease | None = None
) -> Order:
    """Place `intent` at most once. Safe to call again after any failure or crash.

    Under the symbol's lease (kestrel.execution.lease), taken here unless the caller holds it (its
    context is inside `symbol_lease`, or it passes the `lease` it holds): the look-up of an
    earlier attempt is only conclusive while nobody else can be sending the same intent, so a
    second placer of the same symbol meanwhile gets LeaseBusy and sends nothing."""
    check_wallet_mode(store, exchange, f"placing {intent.client_order_id}")
    if intent.mode is not current_mode():
        raise refuse(
            store,
            f"order {intent.client_order_id} is a {intent.mode} order but the run is "
            f"{current_mode()}; refused",
        )
    run = f"order placement {intent.client_order_id}"
    with symbol_lease_once(store, exchange.id, intent.symbol, run, lease=lease):
        return _place(store, exchange, intent)


def _place(store: Store, exchange: ExchangeClient, intent: Order) -> Order:
    stored = store.get_order(intent.client_order_id)
    if stored is None:
        prepared, problem = prepare_intent(exchange, intent)
        if problem is not None:
            log.warning("order %s refused before sending: %s", intent.client_order_id, problem)
            return _insert_refused(store, prepared, problem)
        try:
            stored = store.insert_order(prepared)
        except DuplicateClientOrderId:
            found = store.get_order(intent.client_order_id)
            assert found is not None
            stored = found
        crash_point("place:intent_stored")
    if stored.status is not OrderStatus.NEW:
        return stored  # already placed and seen: nothing to do
    if stored.send_attempts > 0:  # a previous attempt may have reached the exchange
        resolved = resolve_sent(store, exchange, stored)
        if resolved is not None:
            return resolved
    if stored.role is OrderRole.EXIT and stored.side is Side.SELL:
        stored = _clear_way_for_exit(store, exchange, stored)
        if stored.status is not OrderStatus.NEW:
            return stored
        crash_point("place:way_cleared")
    stored = store.update_order(
        stored.model_copy(
            update={"send_attempts": stored.send_attempts + 1, "last_sent_at": utcnow()}
        ),
        expected_version=stored.version,
    )
    crash_point("place:before_send")
    kind, params = _create_params(stored)
    try:
        remote = exchange.create_order(
            stored.symbol,
            kind,
            stored.side.value,
            float(stored.amount),
            float(stored.price) if stored.price is not None else None,
            params,
        )
    except Exception as exc:
        failure = classify(exc)
        if failure is FailureKind.REJECTED:
            log.warning("order %s rejected: %s", stored.client_order_id, exc)
            return mark(store, stored, OrderStatus.REJECTED, StatusSource.CREATE_RESPONSE, str(exc))
        if failure is FailureKind.DUPLICATE:
            resolved = resolve_sent(store, exchange, stored)
            if resolved is not None:
                return resolved
            raise OrderOutcomeUnknown(
                f"order {stored.client_order_id}: the exchange says it exists but does not "
                "show it yet; will look again"
            ) from None
        raise  # transient or unknown: the intent stays NEW; a retry or the sync resolves it
    crash_point("place:sent")
    placed = absorb(store, exchange, stored, remote, StatusSource.CREATE_RESPONSE)
    crash_point("place:recorded")
    return placed


def resolve_sent(store: Store, exchange: ExchangeClient, order: Order) -> Order | None:
    """The stored result of an order that may have reached the exchange, or None when the
    exchange has certainly not got it (so it may be sent).

    Binance answers "does not exist" for a while after an order closes (eventual
    consistency), so a miss by client order id is double-checked against recent trades: a
    trade of an order we cannot attribute is looked up by its order id, and if that order is
    not visible yet either, OrderOutcomeUnknown says: do not send, retry later."""
    remote = find_remote(exchange, order)
    if remote is not None:
        return absorb(store, exchange, order, remote, StatusSource.ORDER_HISTORY)
    return attribute_recent_trades(store, exchange, order)


def attribute_recent_trades(
    store: Store,
    exchange: ExchangeClient,
    order: Order,
    trades: list[dict[str, Any]] | None = None,
) -> Order | None:
    """`order` found through a trade of an exchange order the store does not know (None if
    there is none). `trades`: the symbol's trades back to the order's creation, when the
    caller has them already (order sync fetches them once per symbol)."""
    if trades is None:
        trades = trades_since(exchange, order.symbol, _created_ms(order), RECENT_TRADES)
    if not trades:
        return None
    known = {o.exchange_order_id for o in store.list_orders(symbol=order.symbol)}
    unattributed: list[str] = []
    for trade in trades:
        order_id = str(trade.get("order") or "")
        if order_id and order_id not in known and order_id not in unattributed:
            unattributed.append(order_id)
    for order_id in unattributed:
        try:
            remote = exchange.fetch_order(order_id, order.symbol)
        except Exception as exc:
            if classify(exc) is FailureKind.NOT_FOUND:
                raise OrderOutcomeUnknown(
                    f"order {order.client_order_id}: trades of exchange order {order_id} are "
                    "visible but the order is not yet; it may be this one. Not resending."
                ) from None
            raise
        if remote.get("clientOrderId") == order.client_order_id:
            return absorb(store, exchange, order, remote, StatusSource.ORDER_HISTORY)
    return None


def _clear_way_for_exit(store: Store, exchange: ExchangeClient, order: Order) -> Order:
    """An exit sells what protective orders hold reserved: cancel them first (the OCO rule:
    the exit supersedes its siblings), and retire older exit intents of the symbol that were
    never sent (this one supersedes them; the version check stops their placement from sending
    if it still runs). If a protective order filled meanwhile and closed the position, the exit
    is no longer wanted. The intent's `updated_at` then says when the way was cleared: order
    sync gives an exit that is not sent soon after it back its protection
    (kestrel.execution.sync)."""
    _supersede_unsent_exits(store, order)
    release_protection(store, exchange, order.symbol, f"superseded by exit {order.client_order_id}")
    position = store.open_position(order.symbol)
    if position is None or position.amount <= 0:
        return mark(
            store,
            order,
            OrderStatus.CANCELED,
            StatusSource.PRE_CHECK,
            "no open position left to exit (closed by its protective order)",
        )
    return store.update_order(
        order.model_copy(
            update={
                "position_id": order.position_id or position.position_id,
                "updated_at": utcnow(),
            }
        ),
        expected_version=order.version,
    )


def _supersede_unsent_exits(store: Store, order: Order) -> None:
    unsent = store.list_orders(
        symbol=order.symbol, statuses=(OrderStatus.NEW,), roles=(OrderRole.EXIT,)
    )
    for other in unsent:
        if other.client_order_id == order.client_order_id or other.may_be_on_exchange:
            continue
        mark(
            store,
            other,
            OrderStatus.CANCELED,
            StatusSource.SUPERSEDED,
            f"never sent; superseded by exit {order.client_order_id}",
        )


# -- canceling --------------------------------------------------------------------------------


def cancel(store: Store, exchange: ExchangeClient, order: Order, reason: str) -> Order:
    """Cancel `order` and record the confirmed outcome (which may be FILLED: it can fill
    before the cancel arrives). Safe to repeat."""
    check_wallet_mode(store, exchange, f"canceling {order.client_order_id}")
    if order.is_final:
        return order
    if order.status in (OrderStatus.NEW, OrderStatus.UNKNOWN):  # no exchange id known yet
        if order.send_attempts == 0:
            return mark(store, order, OrderStatus.CANCELED, StatusSource.PRE_CHECK, reason)
        resolved = resolve_sent(store, exchange, order)
        if resolved is None:
            raise OrderOutcomeUnknown(
                f"cannot cancel {order.client_order_id} yet: the exchange does not show it"
            )
        order = resolved
        if order.is_final:
            return order
    try:
        remote = exchange.cancel_order(
            order.exchange_order_id or "",
            order.symbol,
            {} if order.exchange_order_id else {"clientOrderId": order.client_order_id},
        )
    except Exception as exc:
        if classify(exc) is not FailureKind.NOT_FOUND:
            raise
        # "Unknown order": it closed before our cancel (filled, or canceled elsewhere).
        found = find_remote(exchange, order)
        if found is None:
            raise OrderOutcomeUnknown(
                f"cancel {order.client_order_id}: the exchange no longer lists it as open and "
                "does not show its final state yet"
            ) from None
        return absorb(store, exchange, order, found, StatusSource.ORDER_HISTORY)
    crash_point("cancel:sent")
    return absorb(
        store, exchange, order, remote, StatusSource.CANCEL_RESPONSE, cancel_reason=reason
    )


def live_protection(store: Store, symbol: str) -> list[Order]:
    return [o for o in store.iter_live_orders(symbol) if o.role in PROTECTIVE_ROLES]


def release_protection(
    store: Store, exchange: ExchangeClient, symbol: str, reason: str
) -> list[Order]:
    """Cancel every live protective order of `symbol`; returns their confirmed states."""
    return [cancel(store, exchange, order, reason) for order in live_protection(store, symbol)]
