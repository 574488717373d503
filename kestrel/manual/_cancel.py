"""Cancelling a live order by hand."""

from __future__ import annotations

from kestrel.errors import ManualError, OrderOutcomeUnknown
from kestrel.execution.orders import cancel
from kestrel.manual._plan import check_mode
from kestrel.models import (
    LIVE_STATUSES,
    Order,
    OrderStatus,
)
from kestrel.models.manual import CancelOutcome
from kestrel.runtime import Runtime


def find_live_order(rt: Runtime, ref: str) -> Order:
    """A live order by client order id or exchange order id."""
    order = rt.store.get_order(ref)
    if order is None:
        matches = [
            o for o in rt.store.list_orders(statuses=LIVE_STATUSES) if o.exchange_order_id == ref
        ]
        order = matches[0] if matches else None
    if order is None:
        raise ManualError(f"no order {ref!r} (give a client order id or exchange order id)")
    if order.is_final:
        raise ManualError(
            f"order {order.client_order_id} is already {order.status.value}: nothing to cancel"
        )
    return order


def cancel_order(rt: Runtime, ref: str, *, actor: str) -> CancelOutcome:
    """Cancel a live order through the order lifecycle (`orders.cancel`): the confirmed
    outcome is recorded, which may be FILLED if it filled before the cancel arrived
    (`canceled` is then False). The reason names who canceled it."""
    check_mode(rt)
    order = find_live_order(rt, ref)
    try:
        result = cancel(rt.store, rt.exchange, order, f"canceled by {actor}")
    except OrderOutcomeUnknown as exc:
        raise ManualError(f"{exc}; order sync resolves it (`kestrel sync`), then retry") from None
    canceled = result.status is OrderStatus.CANCELED
    if canceled:
        message = f"order {result.client_order_id} canceled (filled {result.filled})"
    else:
        message = f"order {result.client_order_id} could not be canceled: it is {result.status}"
    return CancelOutcome(
        client_order_id=result.client_order_id,
        symbol=result.symbol,
        canceled=canceled,
        order=result,
        message=message,
    )
