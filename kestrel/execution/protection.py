"""Stop-loss and take-profit for open positions, once their primary order has filled.

The levels come from the primary order (Order.stop_loss / take_profit, set from the Decision)
and live on the position. What protects them:

- native (exchanges that list stop orders; Binance: STOP_LOSS, else STOP_LOSS_LIMIT; the
  paper exchange too, so DEMO protects exactly as REAL does):
  the stop-loss is an exchange order, so it fires even when Kestrel is down; the take-profit
  (and a trailing stop) is watched by the position monitor.
  Why not both on the exchange: on spot every sell order reserves the base amount, so a
  stop-loss and a take-profit for the same holding cannot both rest unless the exchange links
  them (Binance's OCO order lists). ccxt has no unified OCO for Binance spot (only the raw
  orderList endpoints), and an order list would need its own sync path; so Kestrel does the
  OCO itself: when the take-profit (or trailing stop, or a strategy exit) fires, the exit
  first cancels the stop-loss, confirmed by the exchange, then sells (kestrel.execution.orders
  `_clear_way_for_exit`); when the stop-loss executes, the position closes and the
  take-profit watch ends with it; a protective order whose position is closed is canceled.
- monitor (exchanges without stop orders, or protection=monitor):
  both levels are watched by the position monitor, which exits with a market order.

Protection covers what the position holds as soon as it holds something (a partially filled
primary is protected for its fills so far) and is replaced (cancel, confirmed, then a new
order) whenever the position's amount changes, e.g. the next partial fill, or its stop-loss
moves (a trailing stop ratcheted by the position monitor, or `kestrel order move-stop`). The
old stop may have executed just before its cancel: its confirmed final state and fills are
recorded first, and the new stop is sized from the position they leave (none when they
closed it). While an exit is live, protection waits: the exit has canceled it on purpose.
Each stop-loss order's client order id is deterministic (position + generation), and
placement goes through `kestrel.execution.orders.place`, so a crash or a retry never makes a second
one.

Events: SLTP_CREATED when protection is in place (native order accepted, or monitor watch
armed); SLTP_FAILED when the exchange refuses the stop-loss (then the monitor watches it), and
with the failsafe on a CRITICAL event saying what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.books.wallet import check_wallet_mode
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.ccxt_exchange import StopKind, market_spec, native_stop_kind
from kestrel.exchange.settings import ExchangeSettings, ProtectionMode
from kestrel.execution.lease import symbol_lease
from kestrel.execution.orders import PROTECTIVE_ROLES, cancel, place
from kestrel.ids import client_order_id, installation_id
from kestrel.mode import current_mode
from kestrel.models import (
    LIVE_STATUSES,
    Event,
    EventType,
    MarketSpec,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
)
from kestrel.money import Rounding
from kestrel.store.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtectionPolicy:
    mode: ProtectionMode = "auto"
    stop_limit_offset_pct: Decimal = Decimal("0.005")
    failsafe: bool = True

    @classmethod
    def from_settings(cls, settings: ExchangeSettings) -> ProtectionPolicy:
        return cls(settings.protection, settings.stop_limit_offset_pct, settings.sltp_failsafe)

    def stop_kind(self, exchange: ExchangeClient, symbol: str) -> StopKind | None:
        """The native stop-loss order to use, or None when the monitor watches it."""
        if self.mode == "monitor":
            return None
        return native_stop_kind(exchange, symbol)


class ProtectionReport(BaseModel):
    protected: dict[str, str] = Field(
        default_factory=dict, description="symbol -> native:<client id> | monitor | waiting"
    )
    created: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    released: list[str] = Field(default_factory=list, description="orphans canceled (OCO)")


def protect_positions(
    store: Store, exchange: ExchangeClient, policy: ProtectionPolicy
) -> ProtectionReport:
    """Give every open position its protection, and cancel protection whose position closed.
    Costs no request when everything is already in place."""
    check_wallet_mode(store, exchange, "position protection")
    report = ProtectionReport()
    positions = store.list_positions(status=PositionStatus.OPEN)
    open_ids = {p.position_id for p in positions}
    for order in store.list_orders(statuses=LIVE_STATUSES, roles=PROTECTIVE_ROLES):
        if order.position_id in open_ids:
            continue
        try:
            done = cancel(store, exchange, order, "position closed: sibling executed (OCO)")
            report.released.append(f"{order.client_order_id}:{done.status.value}")
        except Exception as exc:
            log.warning("could not cancel orphan %s: %s", order.client_order_id, exc)
            report.failed[order.symbol] = f"orphan {order.client_order_id}: {exc}"
    for position in positions:
        try:
            with symbol_lease(store, exchange.id, position.symbol, "order sync: protection"):
                report.protected[position.symbol] = ensure_protection(
                    store, exchange, policy, position, report
                )
        except Exception as exc:
            log.warning("protection for %s not done: %s", position.symbol, exc)
            report.failed[position.symbol] = f"{type(exc).__name__}: {exc}"
    return report


def _live(store: Store, symbol: str, roles: tuple[OrderRole, ...]) -> list[Order]:
    return store.list_orders(symbol=symbol, statuses=LIVE_STATUSES, roles=roles)


def ensure_protection(
    store: Store,
    exchange: ExchangeClient,
    policy: ProtectionPolicy,
    position: Position,
    report: ProtectionReport,
) -> str:
    if position.stop_loss is None and position.take_profit is None:
        return "none"
    symbol = position.symbol
    if _live(store, symbol, (OrderRole.EXIT,)):
        return "exiting"
    kind = policy.stop_kind(exchange, symbol) if position.stop_loss is not None else None
    if kind is None:
        _announce_monitor(store, exchange, position)
        return "monitor"
    stops = [
        o
        for o in store.list_orders(symbol=symbol, roles=(OrderRole.STOP_LOSS,))
        if o.position_id == position.position_id
    ]
    spec = market_spec(exchange, symbol)
    amount = spec.amount_to_precision(position.amount)
    latest = stops[-1] if stops else None
    if latest is not None:
        if latest.status is OrderStatus.NEW:
            result = place(store, exchange, latest)
            _announce(store, policy, position, result, report)
            return _label(result)
        if latest.status in LIVE_STATUSES:
            why = _replace_why(latest, position, amount, spec)
            if latest.status is not OrderStatus.OPEN or why is None:
                return _label(latest)
            current = _retire(store, exchange, latest, why)
            if current is None:
                return "stop-loss executed"
            position = current
            amount = spec.amount_to_precision(position.amount)
        elif latest.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
            return "monitor (native stop-loss refused)"
        elif latest.status is OrderStatus.FILLED:
            return "stop-loss executed"
    assert position.stop_loss is not None
    too_small = spec.size_problem(amount, position.stop_loss)
    if too_small is not None:
        _failed(
            store,
            policy,
            position,
            f"sl|{position.position_id}|small",
            f"{position.amount} {symbol} is below the market's minimum order "
            f"({too_small.detail}); it cannot carry a stop",
        )
        return "monitor (too small for a stop order)"
    installation = installation_id(store)
    intent = _stop_intent(exchange, policy, position, kind, amount, len(stops), spec, installation)
    result = place(store, exchange, intent)
    _announce(store, policy, position, result, report)
    return _label(result)


def _replace_why(stop: Order, position: Position, amount: Decimal, spec: MarketSpec) -> str | None:
    """Why the resting stop no longer fits the position (None: it does): the amount held
    changed, or the stop-loss moved (a trailing stop, or an operator's move)."""
    if stop.amount != amount:
        return f"resized: position holds {position.amount}"
    assert position.stop_loss is not None
    # Rounded as placement rounds it (prepare_intent), or the stop would be replaced every pass.
    if stop.stop_price != spec.stop_price(stop.side, position.stop_loss):
        return f"moved: stop-loss {stop.stop_price} -> {position.stop_loss}"
    return None


def _retire(store: Store, exchange: ExchangeClient, stop: Order, reason: str) -> Position | None:
    """Cancel `stop` and return the position as the stop's final state leaves it (None when
    closed). The stop may have executed, wholly or in part, before the cancel arrived:
    `cancel` records its confirmed state with its fills, and the fills move the position, so
    the next stop is sized from what is really held, never from the stale amount."""
    cancel(store, exchange, stop, reason)
    if stop.position_id is None:
        return store.open_position(stop.symbol)
    current = store.get_position(stop.position_id)
    if current is None or current.status is not PositionStatus.OPEN or current.amount <= 0:
        return None
    return current


def _stop_intent(
    exchange: ExchangeClient,
    policy: ProtectionPolicy,
    position: Position,
    kind: StopKind,
    amount: Decimal,
    generation: int,
    spec: MarketSpec,
    installation: str,
) -> Order:
    assert position.stop_loss is not None
    mode = current_mode()
    limit = None
    if kind == "limit":
        # DOWN: a stop-limit's limit is there to fill once triggered; lower fills more surely.
        limit = spec.price_to_precision(
            position.stop_loss * (1 - policy.stop_limit_offset_pct), Rounding.DOWN
        )
    return Order(
        client_order_id=client_order_id(
            mode,
            f"sl|{position.position_id}|{generation}",
            position.symbol,
            OrderRole.STOP_LOSS,
            installation=installation,
        ),
        mode=mode,
        exchange=exchange.id,
        symbol=position.symbol,
        side=Side.SELL,
        type=OrderType.STOP_MARKET if kind == "market" else OrderType.LIMIT,
        role=OrderRole.STOP_LOSS,
        amount=amount,
        price=limit,
        stop_price=position.stop_loss,
        reference_price=position.stop_loss,
        stop_loss=position.stop_loss,
        take_profit=position.take_profit,
        position_id=position.position_id,
        reason=f"stop-loss for position {position.position_id}",
    )


def _label(order: Order) -> str:
    return f"native:{order.client_order_id}:{order.status.value}"


def _announce(
    store: Store,
    policy: ProtectionPolicy,
    position: Position,
    order: Order,
    report: ProtectionReport,
) -> None:
    if order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        tp = (
            f"; take-profit {position.take_profit} watched by the position monitor"
            if position.take_profit is not None
            else ""
        )
        store.append_events(
            [
                Event(
                    event_id=f"sltp:{order.client_order_id}:created",
                    type=EventType.SLTP_CREATED,
                    mode=current_mode(),
                    symbol=position.symbol,
                    client_order_id=order.client_order_id,
                    message=(
                        f"{position.symbol}: stop-loss order at {order.stop_price} for "
                        f"{order.amount} on the exchange{tp}"
                    ),
                    data={
                        "position_id": position.position_id,
                        "stop_loss": str(position.stop_loss),
                        "take_profit": str(position.take_profit) if position.take_profit else None,
                        "stop_order": order.client_order_id,
                        "exchange_order_id": order.exchange_order_id,
                        "amount": str(order.amount),
                        "take_profit_watch": "monitor",
                    },
                )
            ]
        )
        report.created.append(order.client_order_id)
    elif order.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
        _failed(store, policy, position, order.client_order_id, order.reason or "refused")
        report.failed[position.symbol] = order.reason or "refused"


def _announce_monitor(store: Store, exchange: ExchangeClient, position: Position) -> None:
    store.append_events(
        [
            Event(
                event_id=f"sltp:{position.position_id}:monitor",
                type=EventType.SLTP_CREATED,
                mode=current_mode(),
                symbol=position.symbol,
                message=(
                    f"{position.symbol}: stop-loss {position.stop_loss} and take-profit "
                    f"{position.take_profit} watched by the position monitor "
                    f"(no native stop orders used on {exchange.id})"
                ),
                data={
                    "position_id": position.position_id,
                    "stop_loss": str(position.stop_loss) if position.stop_loss else None,
                    "take_profit": str(position.take_profit) if position.take_profit else None,
                    "watch": "monitor",
                },
            )
        ]
    )


def _failed(store: Store, policy: ProtectionPolicy, position: Position, key: str, why: str) -> None:
    mode = current_mode()
    events = [
        Event(
            event_id=f"sltp:{key}:failed",
            type=EventType.SLTP_FAILED,
            mode=mode,
            symbol=position.symbol,
            reasons=[why],
            message=(
                f"{position.symbol}: the stop-loss order was not placed: {why}. The position "
                f"monitor watches stop-loss {position.stop_loss} / take-profit "
                f"{position.take_profit} instead."
            ),
            data={
                "position_id": position.position_id,
                "amount": str(position.amount),
                "stop_loss": str(position.stop_loss) if position.stop_loss else None,
                "take_profit": str(position.take_profit) if position.take_profit else None,
                "reason": why,
            },
        )
    ]
    if policy.failsafe:
        events.append(
            Event(
                event_id=f"critical:sltp:{key}",
                type=EventType.CRITICAL,
                mode=mode,
                symbol=position.symbol,
                reasons=["SLTP_FAILED"],
                message=(
                    f"ACTION NEEDED: {position.amount} {position.symbol} ({mode}) has no "
                    f"stop-loss on the exchange ({why}). Only the position monitor protects it, "
                    "and only while it runs. Do one of: place a stop-loss at "
                    f"{position.stop_loss} on the exchange by hand; close the position "
                    f"(`kestrel order close {position.symbol}`); or stop new trades "
                    "(`kestrel stop`) and make sure the position-monitor deployment is running "
                    "(`kestrel monitor --window 60` runs it by hand)."
                ),
                data={"position_id": position.position_id},
            )
        )
    store.append_events(events)
