"""Writing off an UNKNOWN order the operator has checked by hand.

An order becomes UNKNOWN when it was (or may have been) sent and the exchange never showed it
(kestrel.execution.sync): only the exchange's word ends it, so order sync keeps asking forever.
When the operator has verified on the exchange itself (its order history, by client order
id) that the order does not exist, they write it off: it becomes FAILED with status source
`written_off`, the reason and who said so in its record and in an ORDER_FAILED event. The
record is kept (never deleted); only UNKNOWN orders qualify, so an order the exchange has
spoken about can never be overruled this way.

DEMO acts at once. REAL takes the manual orders' two calls (kestrel.operator.tokens): a preview
with a one-time token bound to this order, this reason and the order's stored version, then
the same command with the token; if the order changed in between (sync resolved it), the
confirmation is refused.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kestrel.errors import ConfirmationRefused, ManualError
from kestrel.execution.orders import order_event
from kestrel.mode import TradingMode
from kestrel.models import (
    EventType,
    Order,
    OrderStatus,
    StatusSource,
    check_transition,
    utcnow,
)
from kestrel.operator.tokens import DEFAULT_TTL_S, consume_token, issue_token, void_token
from kestrel.runtime import Runtime
from kestrel.store.base import Store

WRITE_OFF_REASON = "WRITTEN_OFF"


class WriteOffRequest(BaseModel):
    """Write off `client_order_id` because of `reason` (what the operator checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["write_off"] = "write_off"
    client_order_id: str = Field(min_length=1, max_length=36)
    reason: str = Field(min_length=3, max_length=500, description="what was verified, and how")

    @field_validator("reason")
    @classmethod
    def _said_something(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 3:
            raise ValueError("say what you verified on the exchange (at least 3 characters)")
        return value

    def fingerprint(self) -> str:
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()


class WriteOffOutcome(BaseModel):
    status: Literal["needs_confirmation", "written_off"]
    client_order_id: str
    message: str
    token: str | None = None
    expires_at: datetime | None = None
    order: Order | None = None


def _unknown_order(store: Store, client_order_id: str) -> Order:
    order = store.get_order(client_order_id)
    if order is None:
        raise ManualError(f"no order {client_order_id} in the {store.mode} store")
    if order.status is not OrderStatus.UNKNOWN:
        raise ManualError(
            f"order {client_order_id} is {order.status} (via {order.status_source}); only an "
            "UNKNOWN order can be written off (the exchange's word settles the others)"
        )
    return order


def _plan(order: Order) -> str:
    """What the preview showed: this order at this version (any change voids the token)."""
    return f"{order.client_order_id}@{order.version}"


def write_off(
    rt: Runtime,
    request: WriteOffRequest,
    *,
    actor: str,
    confirm: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
) -> WriteOffOutcome:
    """DEMO: write the order off. REAL: without `confirm`, a preview and a token; with it,
    write off if the token is for exactly this and the order has not changed since."""
    if confirm is not None:  # the token first: a used or foreign one is a SECURITY event
        record = consume_token(rt.store, confirm, request, request_id=None, by=actor)
        order = rt.store.get_order(request.client_order_id)
        if order is None or record.plan != _plan(order):
            void_token(rt.store, confirm, "not executed: the order changed since the preview")
            raise ConfirmationRefused(
                "changed",
                f"order {request.client_order_id} changed since the preview; nothing was "
                "written off; preview again",
            )
    order = _unknown_order(rt.store, request.client_order_id)
    if rt.mode is TradingMode.REAL and confirm is None:
        token, record = issue_token(
            rt.store,
            request,
            request_id=f"write-off|{order.client_order_id}",
            plan=_plan(order),
            prices={},
            by=actor,
            ttl_s=ttl_s,
        )
        return WriteOffOutcome(
            status="needs_confirmation",
            client_order_id=order.client_order_id,
            message=(
                f"would write off {_describe(order)} as FAILED ({request.reason}); the record "
                "is kept. Run the same command with --confirm TOKEN to do it"
            ),
            token=token,
            expires_at=record.expires_at,
            order=order,
        )
    written = _apply(rt.store, order, request, actor)
    return WriteOffOutcome(
        status="written_off",
        client_order_id=written.client_order_id,
        message=f"written off {_describe(written)}: FAILED, via {written.status_source}",
        order=written,
    )


def _apply(store: Store, order: Order, request: WriteOffRequest, actor: str) -> Order:
    """FAILED (written_off), the reason in the record and in one ORDER_FAILED event, in one
    versioned write: a sync that changed the order meanwhile makes this fail, not overwrite."""
    note = f"written off by {actor}: {request.reason}"
    after = order.model_copy(
        update={
            "status": OrderStatus.FAILED,
            "status_source": StatusSource.WRITTEN_OFF,
            "reason": f"{order.reason}; {note}" if order.reason else note,
            "updated_at": utcnow(),
        }
    )
    check_transition(order.status, after.status, after.status_source)
    event = order_event(EventType.ORDER_FAILED, after, "FAILED")
    event = event.model_copy(
        update={
            "reasons": [*event.reasons, WRITE_OFF_REASON],
            "data": {**event.data, "written_off_by": actor, "write_off_reason": request.reason},
        }
    )
    return store.update_order(after, expected_version=order.version, events=[event])


def _describe(order: Order) -> str:
    return (
        f"{order.client_order_id} ({order.role} {order.side} {order.amount} {order.symbol}, "
        f"sent {order.send_attempts} time(s))"
    )
