"""Planning a manual action: the legs an order or a close would place, checked by the same risk
gates, rules and levels as the cycle's decisions.
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

from pydantic import TypeAdapter

from kestrel.analysis.engine import prepare
from kestrel.config.settings import WatchlistItem
from kestrel.errors import ManualError
from kestrel.execution.orders import live_protection
from kestrel.ids import installation_id
from kestrel.mode import current_mode
from kestrel.models import (
    Action,
    AnalysisResult,
    Decision,
    MarketSpec,
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
from kestrel.models.manual import (
    AnyRequest,
    ClosePositionRequest,
    LegPreview,
    ManualRequest,
    MoveLevelsRequest,
    PlaceOrderRequest,
    canonical_decimal,
)
from kestrel.money import ZERO, Rounding, to_decimal
from kestrel.risk import RiskContext
from kestrel.risk.gates import SAFETY_GATES
from kestrel.risk.levels import Levels, protective_levels
from kestrel.risk.rules import ENTRY_RULES, check_size, has_price
from kestrel.risk.sizing import caps
from kestrel.runtime import Runtime
from kestrel.strategy.resolve import SymbolPlan, resolve_plan
from kestrel.trading.cycle import fetch_candles, risk_context
from kestrel.trading.decision import decide

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
