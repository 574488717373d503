"""Moving an open position's stop-loss, take-profit or trailing stop by hand."""

from __future__ import annotations

import logging

from kestrel.errors import ConfirmationRefused, ManualError
from kestrel.execution.lease import OPERATOR_WAIT_S, symbol_lease
from kestrel.manual._plan import Clock, new_request_id
from kestrel.manual.levels import MovePlan, apply_move, plan_move
from kestrel.models import (
    Order,
)
from kestrel.models.manual import ManualOutcome, MoveLevelsRequest, OutcomeStatus
from kestrel.operator.tokens import (
    TokenRecord,
    consume_token,
    issue_token,
    void_token,
)
from kestrel.runtime import Runtime

log = logging.getLogger(__name__)


def move(
    rt: Runtime,
    request: MoveLevelsRequest,
    *,
    actor: str,
    confirm: str | None,
    dry_run: bool,
    require_confirmation: bool,
    ttl_s: float,
    now: Clock,
) -> ManualOutcome:
    """Move an open position's levels, through the same confirmation as an order."""
    request_id = request.request_id or new_request_id()
    if confirm is not None:
        record = consume_token(
            rt.store, confirm, request, request_id=request.request_id, by=actor, now=now
        )
        return confirmed_move(rt, request, record, confirm, actor, now)
    move = plan_move(rt, request)
    if dry_run:
        return _move_outcome(rt, request, request_id, OutcomeStatus.PREVIEW, move, "dry run")
    if require_confirmation:
        token, record = issue_token(
            rt.store,
            request,
            request_id=request_id,
            plan=move.fingerprint,
            prices={request.symbol: str(move.last_price)},
            by=actor,
            ttl_s=ttl_s,
            now=now,
        )
        outcome = _move_outcome(
            rt,
            request,
            request_id,
            OutcomeStatus.NEEDS_CONFIRMATION,
            move,
            f"{rt.mode.value} mode: nothing moved yet. Confirm within {ttl_s:g}s with this token.",
        )
        return outcome.model_copy(update={"token": token, "expires_at": record.expires_at})
    return _apply_move(rt, request, request_id, move, actor)


def confirmed_move(
    rt: Runtime,
    request: MoveLevelsRequest,
    record: TokenRecord,
    token: str,
    actor: str,
    now: Clock,
) -> ManualOutcome:
    """Act on a consumed token: only if the position is still the one previewed."""
    try:
        move = plan_move(rt, request)
    except ManualError as exc:
        void_token(rt.store, token, f"not executed: {exc}", now)
        raise
    if move.fingerprint != record.plan:
        void_token(rt.store, token, "not executed: the position changed since the preview", now)
        raise ConfirmationRefused(
            "changed",
            f"the {request.symbol} position changed since the preview: nothing was moved; "
            "preview again",
        )
    return _apply_move(rt, request, record.request_id, move, actor)


def _apply_move(
    rt: Runtime, request: MoveLevelsRequest, request_id: str, move: MovePlan, actor: str
) -> ManualOutcome:
    errors: list[str] = []
    orders: list[Order] = []
    try:  # it may cancel and replace the stop order: under the symbol's lease, like orders
        run = f"manual stop move {request_id}"
        with symbol_lease(rt.store, rt.exchange.id, request.symbol, run, wait_s=OPERATOR_WAIT_S):
            orders = apply_move(rt, move, actor=actor, request_id=request_id)
    except ManualError:
        raise
    except Exception as exc:  # the levels are saved; the next sync pass replaces the stop
        log.exception("moving the %s stop order failed", request.symbol)
        errors.append(
            f"{request.symbol}: levels saved, but the stop order was not replaced yet "
            f"({type(exc).__name__}: {exc}); order sync retries it"
        )
    outcome = _move_outcome(rt, request, request_id, OutcomeStatus.APPLIED, move, "levels moved")
    return outcome.model_copy(update={"orders": orders, "errors": errors})


def _move_outcome(
    rt: Runtime,
    request: MoveLevelsRequest,
    request_id: str,
    status: OutcomeStatus,
    move: MovePlan,
    message: str,
) -> ManualOutcome:
    lines = [f"last price {move.last_price}", *move.changes(), *move.warnings(), message]
    return ManualOutcome(
        status=status,
        mode=rt.mode,
        action=request.describe(),
        request_id=request_id,
        message="; ".join(lines),
    )
