"""Risk rules: each inspects the context and returns a blocking Reason or None.

Order matters only for which reason is reported first; every rule runs, so a verdict lists
every reason a trade could not happen.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kestrel.models import Action, Reason, ReasonCode
from kestrel.risk.context import RiskContext

Rule = Callable[[RiskContext], Reason | None]


def emergency_stop(ctx: RiskContext) -> Reason | None:
    if ctx.emergency_stop:
        return Reason(code=ReasonCode.BLOCKED_EMERGENCY_STOP, detail="emergency stop is set")
    return None


def trade_enabled(ctx: RiskContext) -> Reason | None:
    if not ctx.item.trade_enabled:
        return Reason(
            code=ReasonCode.SKIP_DISABLED_TRADE, detail=f"trading off for {ctx.item.symbol}"
        )
    return None


def trade_amount_valid(ctx: RiskContext) -> Reason | None:
    if ctx.item.trade_amount_usd <= 0:
        return Reason(
            code=ReasonCode.SKIP_INVALID_TRADE_AMOUNT,
            detail="trade_amount_usd must be > 0",
            values={"trade_amount_usd": str(ctx.item.trade_amount_usd)},
        )
    return None


def market_data_fresh(ctx: RiskContext) -> Reason | None:
    candle_close = ctx.analysis.candle_timestamp + ctx.timeframe_ms
    age_ms = ctx.now_ms - candle_close
    limit_ms = ctx.settings.stale_after_candles * ctx.timeframe_ms
    if age_ms > limit_ms:
        return Reason(
            code=ReasonCode.SKIP_MARKET_DATA_STALE,
            detail=f"last candle closed {age_ms / 1000:.0f}s ago; limit {limit_ms / 1000:.0f}s",
            values={"age_ms": age_ms, "limit_ms": limit_ms},
        )
    return None


def has_price(ctx: RiskContext) -> Reason | None:
    if ctx.analysis.price <= 0:
        return Reason(code=ReasonCode.SKIP_NO_PRICE, detail="no usable price")
    return None


def confidence(ctx: RiskContext) -> Reason | None:
    signal = ctx.analysis.signal
    if signal.confidence < ctx.settings.min_confidence:
        return Reason(
            code=ReasonCode.LOW_CONFIDENCE,
            detail=f"confidence {signal.confidence:.2f} < {ctx.settings.min_confidence:.2f}",
            values={"confidence": signal.confidence, "threshold": ctx.settings.min_confidence},
        )
    return None


def max_open_orders(ctx: RiskContext) -> Reason | None:
    limit = ctx.settings.max_open_orders_per_symbol
    if ctx.open_orders_for_symbol >= limit:
        return Reason(
            code=ReasonCode.SKIP_MAX_OPEN_ORDERS,
            detail=f"{ctx.open_orders_for_symbol} open orders; max {limit}",
            values={"open_orders": ctx.open_orders_for_symbol, "max": limit},
        )
    return None


def position_rules(ctx: RiskContext) -> Reason | None:
    """Spot, one position per symbol: BUY needs none open, SELL needs one to exit."""
    action = ctx.analysis.signal.action
    if action is Action.BUY and ctx.position is not None:
        return Reason(code=ReasonCode.SKIP_POSITION_OPEN, detail="already long; no pyramiding")
    if action is Action.BUY and ctx.open_positions >= ctx.settings.max_open_positions:
        return Reason(
            code=ReasonCode.SKIP_MAX_POSITIONS,
            detail=f"{ctx.open_positions} positions open; max {ctx.settings.max_open_positions}",
        )
    if action is Action.SELL and ctx.position is None:
        return Reason(code=ReasonCode.SKIP_NO_POSITION, detail="nothing to sell")
    return None


ENTRY_RULES: tuple[Rule, ...] = (
    emergency_stop,
    trade_enabled,
    trade_amount_valid,
    has_price,
    market_data_fresh,
    confidence,
    max_open_orders,
    position_rules,
)


def check_size(ctx: RiskContext, amount: Decimal, price: Decimal) -> Reason | None:
    """The market's minimums and our balance, on the amount already rounded to precision."""
    market = ctx.market
    notional = amount * price
    if amount <= 0 or amount < market.min_amount:
        return Reason(
            code=ReasonCode.BELOW_MIN_AMOUNT,
            detail=f"amount {amount} below the market minimum {market.min_amount}",
            values={"amount": str(amount), "min_amount": str(market.min_amount)},
        )
    if notional < market.min_notional:
        return Reason(
            code=ReasonCode.BELOW_MIN_NOTIONAL,
            detail=f"order value {notional} below the market minimum {market.min_notional}",
            values={"notional": str(notional), "min_notional": str(market.min_notional)},
        )
    if ctx.analysis.signal.action is Action.BUY:
        needed = notional * (1 + market.taker_fee)
        if needed > ctx.quote_free:
            return Reason(
                code=ReasonCode.INSUFFICIENT_BALANCE,
                detail=f"needs {needed} {market.quote}, {ctx.quote_free} free",
                values={"needed": str(needed), "free": str(ctx.quote_free)},
            )
    elif amount > ctx.base_free:
        return Reason(
            code=ReasonCode.INSUFFICIENT_BALANCE,
            detail=f"needs {amount} {market.base}, {ctx.base_free} free",
            values={"needed": str(amount), "free": str(ctx.base_free)},
        )
    return None
