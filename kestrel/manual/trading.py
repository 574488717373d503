"""Manual orders and closes through the automated order path.

A manual order is a decision like any other: the cycle's risk context (`cycle.risk_context`,
with the symbol's strategy profile from `strategy.resolve`), the same safety gates and rules
(`risk.gates.SAFETY_GATES`, `risk.rules.ENTRY_RULES`), the exposure caps
(`risk.sizing.caps`), the market minimums and balance (`risk.rules.check_size`), the
profile's protective levels (`risk.levels`), `decide` (client order id, stop-loss /
take-profit), the decision event, then `orders.intent_from_decision` + `orders.place` (the
lifecycle's precision, pre-checks, intent-first and lookup-before-resend, order events, and
SL/TP protection by order sync once it fills). What differs is only where the signal comes
from and the size:

- the signal is the operator's: BUY/SELL, confidence 1, the price is the limit price or the
  exchange's last price, the candle time is the symbol's latest closed candle (so the
  market-data freshness gate still applies);
- the size is what the operator asked for (base, or quote converted at the reference price),
  rounded down to the market's step, instead of the configured sizing; a size above the room
  under an exposure cap is refused with the room left (not silently clipped); the symbol's
  trade amount in the risk context is this order's value, so the amount gate checks it;
- stop-loss / take-profit: the operator's where given, else the profile's;
- closes are exits, the safe direction, as with the position monitor: no entry gate blocks
  them (emergency stop, breaker, trading disabled, freshness); a price, no exit already live,
  and the minimums and balance do. `orders.place` cancels the symbol's protective orders
  before an exit, so the coins they reserve count as free in the balance check.

Idempotency: the cycle id of a manual action is `manual|<request id>`, so its client order
ids are deterministic; the request (its fingerprint and client order ids) is recorded under
`manual_request:<id>` before anything is sent. The same request id again resumes or reports
those orders and never places twice; the same id with other parameters is refused.

REAL mode takes two calls: the first plans, records nothing but a token (kestrel.manual.
tokens) and returns the preview; the second, with the token, re-plans and acts only if the
token is valid for exactly this action, the legs are the ones previewed and the price has not
moved more than `max_price_move` since.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from kestrel.analysis.engine import prepare
from kestrel.cycle import decision_event, fetch_candles, risk_context
from kestrel.decision import decide
from kestrel.exchange.errors import OrderOutcomeUnknown
from kestrel.ids import installation_id
from kestrel.lease import OPERATOR_WAIT_S, symbol_lease
from kestrel.manual.levels import MovePlan, apply_move, plan_move
from kestrel.manual.models import (
    AnyRequest,
    CancelOutcome,
    ClosePositionRequest,
    ConfirmationRefused,
    LegPreview,
    ManualError,
    ManualOutcome,
    ManualRequest,
    MoveLevelsRequest,
    OutcomeStatus,
    PlaceOrderRequest,
    RequestIdConflict,
    canonical_decimal,
)
from kestrel.manual.tokens import (
    DEFAULT_TTL_S,
    TokenRecord,
    consume_token,
    issue_token,
    peek_token,
    void_token,
)
from kestrel.mode import TradingMode, current_mode
from kestrel.models import (
    LIVE_STATUSES,
    Action,
    AnalysisResult,
    Decision,
    MarketSpec,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Reason,
    ReasonCode,
    RiskVerdict,
    Side,
    Signal,
    utcnow,
)
from kestrel.money import ZERO, Rounding, to_decimal
from kestrel.orders import cancel, intent_from_decision, live_protection, place
from kestrel.risk import RiskContext
from kestrel.risk.gates import SAFETY_GATES
from kestrel.risk.levels import Levels, protective_levels
from kestrel.risk.rules import ENTRY_RULES, check_size, has_price
from kestrel.risk.sizing import caps
from kestrel.runtime import Runtime
from kestrel.settings import WatchlistItem
from kestrel.store.cas import StateChange, update_state
from kestrel.strategy.resolve import SymbolPlan, resolve_plan

log = logging.getLogger(__name__)

REQUEST_KEY_PREFIX = "manual_request:"
DEFAULT_MAX_PRICE_MOVE = Decimal("0.02")
_REQUEST_ADAPTER: TypeAdapter[AnyRequest] = TypeAdapter(ManualRequest)

Clock = Callable[[], datetime]


def check_mode(rt: Runtime) -> None:
    """Stores and order ids follow the current mode: it must be the runtime's."""
    if current_mode() is not rt.mode:
        raise ManualError(
            f"runtime for {rt.mode} used while running in {current_mode()}; wrap the call in "
            f"trading_mode({rt.mode.value})"
        )


def manual_cycle_id(request_id: str) -> str:
    """The cycle id of a manual action (cf. kestrel.ids.cycle_id for automated ones)."""
    return f"manual|{request_id}"


def new_request_id() -> str:
    return f"m{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


def parse_request(data: dict[str, Any]) -> AnyRequest:
    return _REQUEST_ADAPTER.validate_python(data)


class RequestRecord(BaseModel):
    """What ran under a request id (`manual_request:<id>`)."""

    request_id: str
    fingerprint: str
    action: dict[str, Any]
    client_order_ids: list[str] = Field(default_factory=list)
    by: str
    at: datetime


@dataclass
class Leg:
    """One order of a plan: its preview, the decision that would place it, and its inputs."""

    preview: LegPreview
    decision: Decision
    analysis: AnalysisResult
    position: Position | None = None

    @property
    def approved(self) -> bool:
        return self.preview.approved


# -- entry points ---------------------------------------------------------------------------------


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
        return _move(
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
        return _outcome(rt, request, request_id, OutcomeStatus.PREVIEW, legs, "dry run")
    if confirm is not None:
        record = consume_token(
            rt.store, confirm, request, request_id=request.request_id, by=actor, now=now
        )
        return _confirmed(rt, request, record, confirm, actor, max_price_move, now)
    request_id = request.request_id or new_request_id()
    done = _previous_run(rt, request, request_id, resume=not require_confirmation)
    if done is not None:
        return done
    legs = plan(rt, request, request_id, actor)
    if not legs:
        return _outcome(
            rt, request, request_id, OutcomeStatus.NOTHING_TO_DO, legs, "no open position to close"
        )
    if not any(leg.approved for leg in legs):
        _record_blocked(rt, legs, request_id, actor)
        return _outcome(rt, request, request_id, OutcomeStatus.BLOCKED, legs, _blocked_text(legs))
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
        outcome = _outcome(
            rt,
            request,
            request_id,
            OutcomeStatus.NEEDS_CONFIRMATION,
            legs,
            f"REAL mode: nothing placed yet. Confirm within {ttl_s:g}s with this token.",
        )
        return outcome.model_copy(update={"token": token, "expires_at": record.expires_at})
    return _act(rt, request, request_id, legs, actor)


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
        return _confirmed_move(rt, request, record, token, actor, now)
    return _confirmed(rt, request, record, token, actor, max_price_move, now)


def _confirmed(
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
    done = _previous_run(rt, request, request_id)
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
        _record_blocked(rt, legs, request_id, actor)
        void_token(rt.store, token, "not executed: blocked by risk rules", now)
        return _outcome(rt, request, request_id, OutcomeStatus.BLOCKED, legs, _blocked_text(legs))
    return _act(rt, request, request_id, legs, actor)


# -- moving a position's levels (kestrel.manual.levels) -------------------------------------------


def _move(
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
        return _confirmed_move(rt, request, record, confirm, actor, now)
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


def _confirmed_move(
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


# -- planning -------------------------------------------------------------------------------------


def plan(rt: Runtime, request: AnyRequest, request_id: str, actor: str) -> list[Leg]:
    """The orders `request` would place now, each with its verdict. Writes nothing."""
    if isinstance(request, PlaceOrderRequest):
        return [_plan_place(rt, request, request_id, actor)]
    if isinstance(request, ClosePositionRequest):
        position = rt.store.open_position(request.symbol)
        if position is None:
            raise ManualError(f"there is no open {request.symbol} position to close")
        return [_plan_close(rt, position, request, request_id, actor)]
    if isinstance(request, MoveLevelsRequest):
        raise ManualError("moving levels places no order: use submit(), not plan()")
    legs = []
    for position in rt.store.list_positions(status=PositionStatus.OPEN):
        close = ClosePositionRequest(symbol=position.symbol, fraction=Decimal(1))
        legs.append(_plan_close(rt, position, close, request_id, actor))
    return legs


def plan_fingerprint(request: AnyRequest, legs: list[Leg]) -> str:
    """What a confirmation must find again: for closes the positions and amounts, for orders
    the symbol and side (the price is checked separately)."""
    rows = sorted(
        (
            leg.preview.symbol,
            leg.preview.side.value,
            leg.preview.position_id or "",
            "" if isinstance(request, PlaceOrderRequest) else canonical_decimal(leg.preview.amount),
        )
        for leg in legs
        if leg.approved
    )
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _plan_for(rt: Runtime, symbol: str, *, required: bool) -> SymbolPlan:
    """The symbol's watchlist item and strategy profile (as the cycle resolves them)."""
    try:
        item = rt.settings.watch(symbol)
    except KeyError:
        if required:
            listed = ", ".join(i.symbol for i in rt.settings.watchlist)
            raise ManualError(
                f"{symbol} is not on the watchlist ({listed}); add it first "
                f"(`kestrel settings watch-add {symbol}`)"
            ) from None
        item = WatchlistItem(symbol=symbol)  # closing a position of a symbol no longer listed
    return resolve_plan(rt.settings, item)


def _last_price(rt: Runtime, symbol: str) -> Decimal:
    last = rt.exchange.fetch_ticker(symbol).get("last")
    return to_decimal(last) if last is not None else Decimal("0")


def _analysis(
    rt: Runtime,
    plan: SymbolPlan,
    action: Action,
    price: Decimal,
    reasoning: str,
) -> AnalysisResult:
    """The operator's signal in the shape of an analysis: certain, at the reference price,
    timed by the symbol's latest closed candle (the freshness gate's input), with the
    profile's indicators over the recent candles (an ATR-based stop needs the ATR)."""
    item = plan.item
    series = fetch_candles(rt, item)
    values: dict[str, float | None] = {}
    if series.last is not None:
        values = dict(prepare(series, plan.profile).values)
    return AnalysisResult(
        symbol=item.symbol,
        timeframe=item.timeframe,
        candle_timestamp=series.last.timestamp if series.last is not None else 0,
        price=price,
        indicators=values,
        signal=Signal(action=action, confidence=1.0, reasoning=reasoning, analyst="manual"),
    )


def _plan_place(rt: Runtime, request: PlaceOrderRequest, request_id: str, actor: str) -> Leg:
    plan = _plan_for(rt, request.symbol, required=True)
    market = rt.market(request.symbol)
    last = _last_price(rt, request.symbol)
    if request.type is OrderType.LIMIT:
        assert request.price is not None
        price = market.limit_price(request.side, request.price)
    else:
        price = last
    if price <= 0:
        raw = Decimal("0")
    elif request.amount_in == "base":
        raw = request.amount
    else:
        raw = request.amount / price
    amount = market.amount_to_precision(raw)
    stop_loss = _tick(request.stop_loss, market)
    take_profit = _tick(request.take_profit, market)
    if price > 0 and stop_loss is not None and stop_loss >= price:
        raise ManualError(f"stop_loss {stop_loss} must be below the order price {price}")
    if price > 0 and take_profit is not None and take_profit <= price:
        raise ManualError(f"take_profit {take_profit} must be above the order price {price}")
    action = Action.BUY if request.side is Side.BUY else Action.SELL
    analysis = _analysis(rt, plan, action, price, f"manual order by {actor}")
    ctx = risk_context(rt, plan, analysis)
    position = ctx.position
    if action is Action.SELL and position is not None and amount > position.amount:
        raise ManualError(
            f"the {request.symbol} position holds {position.amount}; cannot sell {amount} "
            "(Kestrel sells only what it bought)"
        )
    ctx = _with_order_value(ctx, amount * price)
    reasons = [check for gate in (*SAFETY_GATES, *ENTRY_RULES) if (check := gate(ctx))]
    levels = Levels()
    if action is Action.BUY:
        reasons.extend(_buy_checks(ctx, amount, price))
        levels = _levels(ctx, analysis, market, price, stop_loss, take_profit)
        if levels.stop_loss is None:
            reasons.append(
                Reason(code=ReasonCode.SKIP_INSUFFICIENT_DATA, detail=levels.problem or "no stop")
            )
    size_problem = check_size(ctx, amount, price) if price > 0 else None
    if size_problem is not None:
        reasons.append(size_problem)
    verdict = _verdict(action, reasons, amount, price, f"manual order by {actor}", levels)
    decision = decide(
        cycle=manual_cycle_id(request_id),
        mode=rt.mode,
        installation=installation_id(rt.store),
        analysis=analysis,
        verdict=verdict,
        market=market,
        profile=plan.profile,
    )
    if decision.is_trade and request.type is OrderType.LIMIT:
        decision = decision.model_copy(update={"order_type": OrderType.LIMIT})
    warnings = []
    if request.amount_in == "base" and amount != request.amount:
        warnings.append(f"amount {request.amount} rounded down to {amount} (step)")
    preview = _preview(
        ctx, market, request.side, request.type, amount, price, last, verdict, decision, warnings
    )
    return Leg(preview=preview, decision=decision, analysis=analysis, position=position)


def _plan_close(
    rt: Runtime, position: Position, request: ClosePositionRequest, request_id: str, actor: str
) -> Leg:
    symbol = position.symbol
    plan = _plan_for(rt, symbol, required=False)
    market = rt.market(symbol)
    last = _last_price(rt, symbol)
    if request.amount is not None:
        if request.amount > position.amount:
            raise ManualError(
                f"the {symbol} position holds {position.amount}; cannot close {request.amount}"
            )
        raw = request.amount
    else:
        raw = position.amount * (request.fraction or Decimal(1))
    amount = market.amount_to_precision(raw)
    analysis = _analysis(rt, plan, Action.SELL, last, f"manual close by {actor}")
    # risk_context counts coins held by our protective orders (an exit cancels them first).
    ctx = risk_context(rt, plan, analysis)
    ctx = _with_order_value(ctx, amount * last)
    # An exit is the safe direction: no entry gate blocks it (as with the position monitor);
    # a price, no exit already on its way, and the market minimums and balance do.
    reasons = [r for r in (has_price(ctx),) if r is not None]
    if ctx.pending_exit:
        reasons.append(
            Reason(code=ReasonCode.SKIP_EXIT_PENDING, detail="an exit order is already live")
        )
    size_problem = check_size(ctx, amount, last) if last > 0 else None
    if size_problem is not None:
        reasons.append(size_problem)
    verdict = _verdict(Action.SELL, reasons, amount, last, f"manual close by {actor}", Levels())
    decision = decide(
        cycle=manual_cycle_id(request_id),
        mode=rt.mode,
        installation=installation_id(rt.store),
        analysis=analysis,
        verdict=verdict,
        market=market,
        profile=plan.profile,
    )
    warnings = []
    remainder = position.amount - amount
    if remainder > 0 and market.is_dust(remainder, last):
        warnings.append(
            f"leaves {remainder} {market.base}, below the market minimum: it could not be "
            "sold on its own later"
        )
    protective = live_protection(rt.store, symbol)
    if protective:
        warnings.append(
            f"cancels {len(protective)} live stop-loss/take-profit order(s) of {symbol} first"
        )
    preview = _preview(
        ctx, market, Side.SELL, OrderType.MARKET, amount, last, last, verdict, decision, warnings
    )
    return Leg(
        preview=preview.model_copy(update={"position_id": position.position_id}),
        decision=decision,
        analysis=analysis,
        position=position,
    )


def _tick(value: Decimal | None, market: MarketSpec) -> Decimal | None:
    """A long's stop-loss and take-profit are both sells: they round up (MarketSpec)."""
    return market.price_to_precision(value, Rounding.UP) if value is not None else None


def _with_order_value(ctx: RiskContext, notional: Decimal) -> RiskContext:
    """The symbol's trade amount, for this order, is the order's value (in USD): the amount
    gate then checks this order, not the cycle's configured size."""
    if ctx.quote_to_usd is None:
        return ctx
    item = ctx.item.model_copy(update={"trade_amount_usd": notional * ctx.quote_to_usd})
    return ctx.model_copy(update={"item": item})


def _buy_checks(ctx: RiskContext, amount: Decimal, price: Decimal) -> list[Reason]:
    """A USD price, and the room under the exposure caps. The operator chose the size, so a
    manual order is refused (with the room left) rather than silently clipped."""
    if ctx.quote_to_usd is None or ctx.quote_to_usd <= 0:
        return [
            Reason(
                code=ReasonCode.SKIP_NO_PRICE,
                detail=f"no USD price for {ctx.market.quote} to check the exposure caps",
            )
        ]
    order_usd = amount * price * ctx.quote_to_usd
    reasons = []
    for name, cap, room in caps(ctx):
        if order_usd > room:
            reasons.append(
                Reason(
                    code=ReasonCode.SKIP_MAX_EXPOSURE,
                    detail=f"order {order_usd:.2f} USD exceeds the {max(room, Decimal(0)):.2f} "
                    f"USD left under {name} {cap:.2f} USD",
                    values={
                        "cap": name,
                        "cap_usd": str(cap),
                        "room_usd": str(room),
                        "order_usd": str(order_usd),
                    },
                )
            )
    return reasons


def _levels(
    ctx: RiskContext,
    analysis: AnalysisResult,
    market: MarketSpec,
    price: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> Levels:
    """The profile's protective levels, with the operator's own where given. When the profile
    cannot place the other one (an ATR distance and too few candles for an ATR), it is put
    at the profile's reward:risk ratio from the operator's level. A Levels without a stop-loss
    means: no entry (as for the cycle)."""
    levels = protective_levels(ctx.profile, analysis, market, price)
    if stop_loss is None and take_profit is None:
        return levels
    stop = stop_loss if stop_loss is not None else levels.stop_loss
    target = take_profit if take_profit is not None else levels.take_profit
    profile = ctx.profile
    same_kind = profile.stop_loss.kind == profile.take_profit.kind
    ratio = profile.take_profit.value / profile.stop_loss.value if same_kind else None
    if target is None and stop is not None and ratio is not None:
        target = market.price_to_precision(price + (price - stop) * ratio, Rounding.UP)
    if stop is None and target is not None and ratio is not None:
        stop = market.price_to_precision(max(price - (target - price) / ratio, ZERO), Rounding.UP)
        if stop <= 0:
            stop = None
    if stop is None or target is None:
        return Levels(
            problem=f"{levels.problem or 'no protective levels'}; give both a stop-loss and a "
            "take-profit"
        )
    return Levels(
        stop_loss=stop,
        take_profit=target,
        stop_distance_pct=(price - stop) / price * 100,
        source="manual",
    )


def _verdict(
    action: Action,
    blocking: list[Reason],
    amount: Decimal,
    price: Decimal,
    detail: str,
    levels: Levels,
) -> RiskVerdict:
    if blocking:
        return RiskVerdict(approved=False, reasons=blocking)
    code = ReasonCode.SIGNAL_BUY if action is Action.BUY else ReasonCode.SIGNAL_SELL
    return RiskVerdict(
        approved=True,
        reasons=[
            Reason(code=code, detail=detail, values={"analyst": "manual"}),
            Reason(
                code=ReasonCode.APPROVED,
                values={
                    "amount": str(amount),
                    "price": str(price),
                    "notional": str(amount * price),
                    "stop_loss": str(levels.stop_loss) if levels.stop_loss else None,
                    "take_profit": str(levels.take_profit) if levels.take_profit else None,
                    "levels_from": levels.source if levels.stop_loss else None,
                    "method": "manual",
                },
            ),
        ],
        amount=amount,
        price=price,
        stop_loss=levels.stop_loss,
        take_profit=levels.take_profit,
    )


def _preview(
    ctx: RiskContext,
    market: MarketSpec,
    side: Side,
    order_type: OrderType,
    amount: Decimal,
    price: Decimal,
    last: Decimal,
    verdict: RiskVerdict,
    decision: Decision,
    warnings: list[str],
) -> LegPreview:
    position = ctx.position
    marketable = order_type is OrderType.MARKET or (
        price >= last if side is Side.BUY else price <= last
    )
    fee_rate = market.taker_fee if marketable else market.maker_fee
    notional = amount * price
    fee = notional * fee_rate
    before = position.amount if position is not None else Decimal("0")
    after = before + amount if side is Side.BUY else max(before - amount, Decimal("0"))
    opened = side is Side.BUY and position is None and amount > 0
    closed = side is Side.SELL and position is not None and after == 0
    exposure = after * price
    usd = ctx.quote_to_usd
    return LegPreview(
        symbol=market.symbol,
        side=side,
        type=order_type,
        amount=amount,
        price=price,
        last_price=last,
        notional=notional,
        fee_rate=fee_rate,
        estimated_fee=fee,
        fee_currency=market.quote,
        quote_delta=-(notional + fee) if side is Side.BUY else notional - fee,
        position_before=before,
        position_after=after,
        exposure_after=exposure,
        exposure_after_usd=exposure * usd if usd is not None else None,
        open_positions_after=ctx.open_positions + int(opened) - int(closed),
        stop_loss=decision.stop_loss if decision.is_trade else verdict.stop_loss,
        take_profit=decision.take_profit if decision.is_trade else verdict.take_profit,
        approved=verdict.approved and decision.is_trade,
        reasons=verdict.reasons,
        warnings=warnings,
        client_order_id=decision.client_order_id,
    )


# -- acting ---------------------------------------------------------------------------------------


def _request_key(request_id: str) -> str:
    return REQUEST_KEY_PREFIX + request_id


def _previous_run(
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


def _act(
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
    return _outcome(rt, request, request_id, OutcomeStatus.PLACED, legs, message).model_copy(
        update={"orders": orders, "errors": errors}
    )


def _record_decision(rt: Runtime, leg: Leg, request_id: str, actor: str) -> None:
    event = decision_event(leg.decision, leg.analysis, rt.data_kind, rt.data_source)
    data = {**event.data, "manual": True, "by": actor, "request_id": request_id}
    rt.store.append_events([event.model_copy(update={"data": data})])


def _record_blocked(rt: Runtime, legs: list[Leg], request_id: str, actor: str) -> None:
    for leg in legs:
        _record_decision(rt, leg, request_id, actor)


def _blocked_text(legs: list[Leg]) -> str:
    return "blocked: " + "; ".join(
        f"{leg.preview.symbol} "
        + ", ".join(
            f"{r.code.value} ({r.detail})" if r.detail else r.code.value
            for r in leg.preview.reasons
        )
        for leg in legs
    )


def _outcome(
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


# -- cancel ---------------------------------------------------------------------------------------


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


__all__ = [
    "DEFAULT_MAX_PRICE_MOVE",
    "Leg",
    "cancel_order",
    "confirm_token",
    "find_live_order",
    "manual_cycle_id",
    "new_request_id",
    "parse_request",
    "plan",
    "submit",
]
