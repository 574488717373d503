"""The second confirmation of REAL mode: a preview with a token, and acting only on the token for
exactly the previewed action.
"""

from __future__ import annotations

from decimal import Decimal

from kestrel.errors import ConfirmationRefused, ManualError
from kestrel.manual._moves import confirmed_move
from kestrel.manual._plan import (
    DEFAULT_MAX_PRICE_MOVE,
    Clock,
    check_mode,
    parse_request,
    plan,
    plan_fingerprint,
)
from kestrel.manual._record import act, blocked_text, outcome_of, previous_run, record_blocked
from kestrel.models import (
    OrderType,
    utcnow,
)
from kestrel.models.manual import (
    AnyRequest,
    ManualOutcome,
    MoveLevelsRequest,
    OutcomeStatus,
    canonical_decimal,
)
from kestrel.operator.tokens import (
    TokenRecord,
    consume_token,
    peek_token,
    void_token,
)
from kestrel.runtime import Runtime


def confirm_token(
    rt: Runtime,
    token: str,
    *,
    actor: str,
    max_price_move: Decimal = DEFAULT_MAX_PRICE_MOVE,
    now: Clock = utcnow,
) -> ManualOutcome:
    """Confirm whatever `token` was issued for (Telegram's /confirm TOKEN): the token's
    stored action, so the parameters cannot differ."""
    check_mode(rt)
    found = peek_token(rt.store, token)
    if found is not None and found.action.get("kind") == "settings":  # left unused
        raise ManualError("this token confirms a settings change: `kestrel settings confirm`")
    if found is not None and found.action.get("kind") == "write_off":  # left unused
        raise ManualError(
            "this token confirms an order write-off: `kestrel order write-off CLIENT_ID "
            "--reason ... --confirm TOKEN`"
        )
    record = consume_token(rt.store, token, None, request_id=None, by=actor, now=now)
    request = parse_request({**record.action, "request_id": record.request_id})
    if isinstance(request, MoveLevelsRequest):
        return confirmed_move(rt, request, record, token, actor, now)
    return confirmed(rt, request, record, token, actor, max_price_move, now)


def confirmed(
    rt: Runtime,
    request: AnyRequest,
    record: TokenRecord,
    token: str,
    actor: str,
    max_price_move: Decimal,
    now: Clock,
) -> ManualOutcome:
    """Act on a consumed token: only if the re-planned legs are the ones previewed."""
    request_id, planned, prices = record.request_id, record.plan, record.prices
    request = request.model_copy(update={"request_id": request_id})
    done = previous_run(rt, request, request_id)
    if done is not None:
        void_token(rt.store, token, "request had already run", now)
        return done
    try:
        legs = plan(rt, request, request_id, actor)
    except ManualError as exc:
        void_token(rt.store, token, f"not executed: {exc}", now)
        raise
    if plan_fingerprint(request, legs) != planned:
        void_token(rt.store, token, "not executed: the positions changed since the preview", now)
        raise ConfirmationRefused(
            "changed",
            "the positions to close changed since the preview: nothing was placed; preview again",
        )
    for leg in legs:
        before = prices.get(leg.preview.symbol)
        if before is None or leg.preview.type is not OrderType.MARKET:
            continue
        move = abs(leg.preview.price - Decimal(before)) / Decimal(before)
        if move > max_price_move:
            void_token(rt.store, token, "not executed: price moved", now)
            raise ConfirmationRefused(
                "price_moved",
                f"{leg.preview.symbol} moved from {canonical_decimal(Decimal(before))} to "
                f"{canonical_decimal(leg.preview.price)} "
                f"({move:.2%} > {max_price_move:.2%}) since the preview: nothing was placed; "
                "preview again",
            )
    if not any(leg.approved for leg in legs):
        record_blocked(rt, legs, request_id, actor)
        void_token(rt.store, token, "not executed: blocked by risk rules", now)
        return outcome_of(rt, request, request_id, OutcomeStatus.BLOCKED, legs, blocked_text(legs))
    return act(rt, request, request_id, legs, actor)
