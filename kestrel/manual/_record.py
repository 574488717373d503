"""The request record: what makes a manual request idempotent (its fingerprint and client order
ids, written before anything is sent), and acting on planned legs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kestrel.errors import RequestIdConflict
from kestrel.execution.lease import OPERATOR_WAIT_S, symbol_lease
from kestrel.execution.orders import intent_from_decision, place
from kestrel.manual._plan import REQUEST_KEY_PREFIX, Leg, parse_request
from kestrel.models import (
    Order,
    OrderStatus,
    utcnow,
)
from kestrel.models.manual import AnyRequest, ManualOutcome, OutcomeStatus
from kestrel.runtime import Runtime
from kestrel.store.cas import StateChange, update_state
from kestrel.trading.cycle import decision_event

log = logging.getLogger(__name__)


class RequestRecord(BaseModel):
    """What ran under a request id (`manual_request:<id>`)."""

    request_id: str
    fingerprint: str
    action: dict[str, Any]
    client_order_ids: list[str] = Field(default_factory=list)
    by: str
    at: datetime


def _request_key(request_id: str) -> str:
    return REQUEST_KEY_PREFIX + request_id


def previous_run(
    rt: Runtime, request: AnyRequest, request_id: str, *, resume: bool = True
) -> ManualOutcome | None:
    """The outcome of an earlier run of this request id, if any. With `resume`, an intent an
    earlier run stored but could not send is sent now (same client order id: at most one
    order); without (a REAL preview: nothing may reach the exchange without a token), it is
    only reported."""
    found = rt.store.get_state(_request_key(request_id))
    if found is None:
        return None
    record = RequestRecord.model_validate(found[0])
    if record.fingerprint != request.fingerprint():
        raise RequestIdConflict(
            f"request id {request_id} was already used by {record.by} for a different action "
            f"({parse_request(record.action).describe()}); use a new request id"
        )
    orders, errors = [], []
    for cid in record.client_order_ids:
        stored = rt.store.get_order(cid)
        if stored is None:
            return None  # crashed after recording the request, before the intent: redo
        if not resume:
            orders.append(stored)
            continue
        try:
            run = f"manual request {request_id}"
            with symbol_lease(rt.store, rt.exchange.id, stored.symbol, run, wait_s=OPERATOR_WAIT_S):
                orders.append(place(rt.store, rt.exchange, stored))  # resumes a NEW intent
        except Exception as exc:
            errors.append(f"{stored.symbol}: {type(exc).__name__}: {exc}")
            orders.append(stored)
    message = (
        f"request {request_id} already ran at {record.at:%Y-%m-%d %H:%M:%S} UTC; nothing new "
        "was placed"
    )
    if any(o.status is OrderStatus.NEW for o in orders):
        message += "; an order is still an unconfirmed intent: order sync resolves it"
    return ManualOutcome(
        status=OutcomeStatus.ALREADY_DONE,
        mode=rt.mode,
        action=request.describe(),
        request_id=request_id,
        orders=orders,
        errors=errors,
        message=message,
    )


def _record_request(
    rt: Runtime, request: AnyRequest, request_id: str, legs: list[Leg], actor: str
) -> None:
    record = RequestRecord(
        request_id=request_id,
        fingerprint=request.fingerprint(),
        action=request.model_dump(mode="json", exclude={"request_id"}),
        client_order_ids=[
            leg.decision.client_order_id
            for leg in legs
            if leg.approved and leg.decision.client_order_id
        ],
        by=actor,
        at=utcnow(),
    )

    def claim(doc: dict[str, Any] | None) -> StateChange[None]:
        if doc is None:
            return StateChange(result=None, value=record.model_dump(mode="json"))
        if doc.get("fingerprint") != record.fingerprint:
            raise RequestIdConflict(
                f"request id {request_id} was just used for a different action; use a new "
                "request id"
            )
        # The same request ran (or crashed) before: its client order ids are ours.
        return StateChange(result=None)

    key = _request_key(request_id)
    update_state(rt.store, key, claim, what=f"request {request_id}", attempts=2)


def act(
    rt: Runtime, request: AnyRequest, request_id: str, legs: list[Leg], actor: str
) -> ManualOutcome:
    _record_request(rt, request, request_id, legs, actor)
    orders: list[Order] = []
    errors: list[str] = []
    for leg in legs:
        _record_decision(rt, leg, request_id, actor)
        if not leg.approved:
            continue
        try:  # an exit's place() cancels the symbol's protective orders first
            intent = intent_from_decision(leg.decision, rt.exchange.id)
            run = f"manual order by {actor}"
            with symbol_lease(rt.store, rt.exchange.id, intent.symbol, run, wait_s=OPERATOR_WAIT_S):
                orders.append(place(rt.store, rt.exchange, intent))
        except Exception as exc:
            log.exception("manual %s on %s failed", request.kind, leg.preview.symbol)
            errors.append(f"{leg.preview.symbol}: {type(exc).__name__}: {exc}")
    placed = [o for o in orders if o.status not in (OrderStatus.REJECTED, OrderStatus.FAILED)]
    message = f"{len(placed)} order(s) sent"
    if errors:
        message += f"; {len(errors)} failed (a stored intent is resolved by order sync)"
    return outcome_of(rt, request, request_id, OutcomeStatus.PLACED, legs, message).model_copy(
        update={"orders": orders, "errors": errors}
    )


def _record_decision(rt: Runtime, leg: Leg, request_id: str, actor: str) -> None:
    event = decision_event(leg.decision, leg.analysis, rt.data_kind, rt.data_source)
    data = {**event.data, "manual": True, "by": actor, "request_id": request_id}
    rt.store.append_events([event.model_copy(update={"data": data})])


def record_blocked(rt: Runtime, legs: list[Leg], request_id: str, actor: str) -> None:
    for leg in legs:
        _record_decision(rt, leg, request_id, actor)


def blocked_text(legs: list[Leg]) -> str:
    return "blocked: " + "; ".join(
        f"{leg.preview.symbol} "
        + ", ".join(
            f"{r.code.value} ({r.detail})" if r.detail else r.code.value
            for r in leg.preview.reasons
        )
        for leg in legs
    )


def outcome_of(
    rt: Runtime,
    request: AnyRequest,
    request_id: str,
    status: OutcomeStatus,
    legs: list[Leg],
    message: str,
) -> ManualOutcome:
    return ManualOutcome(
        status=status,
        mode=rt.mode,
        action=request.describe(),
        request_id=request_id,
        legs=[leg.preview for leg in legs],
        message=message,
    )
