"""One entry point for a manual request from any face (CLI, Telegram, flows, API)."""

from __future__ import annotations

from decimal import Decimal

from kestrel.manual._confirm import confirmed
from kestrel.manual._moves import move
from kestrel.manual._plan import (
    DEFAULT_MAX_PRICE_MOVE,
    Clock,
    check_mode,
    new_request_id,
    plan,
    plan_fingerprint,
)
from kestrel.manual._record import act, blocked_text, outcome_of, previous_run, record_blocked
from kestrel.mode import TradingMode
from kestrel.models import (
    utcnow,
)
from kestrel.models.manual import (
    AnyRequest,
    ManualOutcome,
    MoveLevelsRequest,
    OutcomeStatus,
)
from kestrel.operator.tokens import (
    DEFAULT_TTL_S,
    consume_token,
    issue_token,
)
from kestrel.runtime import Runtime


def submit(
    rt: Runtime,
    request: AnyRequest,
    *,
    actor: str,
    confirm: str | None = None,
    dry_run: bool = False,
    require_confirmation: bool = False,
    ttl_s: float = DEFAULT_TTL_S,
    max_price_move: Decimal = DEFAULT_MAX_PRICE_MOVE,
    now: Clock = utcnow,
) -> ManualOutcome:
    """Place an order, close a position or close all, by hand.

    - dry_run: the preview only; nothing is written.
    - REAL (always) or require_confirmation (DEMO): without `confirm`, the preview and a
      one-time token; with it, the action, if the token is valid for exactly this request.
    - DEMO: the action at once (a token passed anyway is checked just the same).
    """
    check_mode(rt)
    require_confirmation = require_confirmation or rt.mode is TradingMode.REAL
    if isinstance(request, MoveLevelsRequest):
        return move(
            rt,
            request,
            actor=actor,
            confirm=confirm,
            dry_run=dry_run,
            require_confirmation=require_confirmation,
            ttl_s=ttl_s,
            now=now,
        )
    if dry_run:
        request_id = request.request_id or new_request_id()
        legs = plan(rt, request, request_id, actor)
        return outcome_of(rt, request, request_id, OutcomeStatus.PREVIEW, legs, "dry run")
    if confirm is not None:
        record = consume_token(
            rt.store, confirm, request, request_id=request.request_id, by=actor, now=now
        )
        return confirmed(rt, request, record, confirm, actor, max_price_move, now)
    request_id = request.request_id or new_request_id()
    done = previous_run(rt, request, request_id, resume=not require_confirmation)
    if done is not None:
        return done
    legs = plan(rt, request, request_id, actor)
    if not legs:
        return outcome_of(
            rt, request, request_id, OutcomeStatus.NOTHING_TO_DO, legs, "no open position to close"
        )
    if not any(leg.approved for leg in legs):
        record_blocked(rt, legs, request_id, actor)
        return outcome_of(rt, request, request_id, OutcomeStatus.BLOCKED, legs, blocked_text(legs))
    if require_confirmation:
        token, record = issue_token(
            rt.store,
            request,
            request_id=request_id,
            plan=plan_fingerprint(request, legs),
            prices={leg.preview.symbol: str(leg.preview.price) for leg in legs},
            by=actor,
            ttl_s=ttl_s,
            now=now,
        )
        outcome = outcome_of(
            rt,
            request,
            request_id,
            OutcomeStatus.NEEDS_CONFIRMATION,
            legs,
            f"REAL mode: nothing placed yet. Confirm within {ttl_s:g}s with this token.",
        )
        return outcome.model_copy(update={"token": token, "expires_at": record.expires_at})
    return act(rt, request, request_id, legs, actor)
