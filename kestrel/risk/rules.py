"""Risk rules: each inspects the context and returns a blocking Reason or None.

Order matters only for which reason is reported first; every rule runs, so a verdict lists
every reason a trade could not happen. The size checks (`check_size`) run afterwards, on the
amount already sized, clipped and rounded to the market's precision.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kestrel.models import Action, Reason, ReasonCode
from kestrel.risk.context import RiskContext

Rule = Callable[[RiskContext], Reason | None]


def trade_enabled(ctx: RiskContext) -> Reason | None:
    if not ctx.item.trade_enabled:
        return Reason(
            code=ReasonCode.SKIP_DISABLED_TRADE,
            detail=f"trading off for {ctx.item.symbol}",
            values={"trade_enabled": False},
        )
    return None


def trade_amount_valid(ctx: RiskContext) -> Reason | None:
    """The configured amount (fixed_quote sizing) must be positive; a BUY sized from it
    would otherwise be empty. Other sizing methods have their own validated settings."""
    if ctx.analysis.signal.action is not Action.BUY:
        return None
    stake, currency = ctx.item.stake()
    if ctx.trading.sizing.method == "fixed_quote" and currency == "USD" and stake <= 0:
        return Reason(
            code=ReasonCode.SKIP_INVALID_TRADE_AMOUNT,
            detail="trade_amount_usd must be > 0",
            values={"trade_amount_usd": str(ctx.item.trade_amount_usd)},
        )
    return None


def market_data_fresh(ctx: RiskContext) -> Reason | None:
    candle_close = ctx.analysis.candle_timestamp + ctx.timeframe_ms
    age_ms = ctx.now_ms - candle_close
    limit_ms = int(ctx.settings.stale_after_candles * ctx.timeframe_ms)
    if age_ms > limit_ms:
        return Reason(
            code=ReasonCode.SKIP_MARKET_DATA_STALE,
            detail=f"last candle closed {age_ms / 1000:.0f}s ago; limit {limit_ms / 1000:.0f}s",
            values={"age_ms": age_ms, "limit_ms": limit_ms},
        )
    return None


def has_price(ctx: RiskContext) -> Reason | None:
    if ctx.analysis.price <= 0:
        return Reason(
            code=ReasonCode.SKIP_NO_PRICE,
            detail="no usable price",
            values={"price": str(ctx.analysis.price)},
        )
    return None


def confidence(ctx: RiskContext) -> Reason | None:
    """The pre-trade gate: a signal below the threshold is a HOLD."""
    signal = ctx.analysis.signal
    threshold = ctx.min_confidence
    if signal.confidence < threshold:
        return Reason(
            code=ReasonCode.LOW_CONFIDENCE,
            detail=f"confidence {signal.confidence:.4f} < {threshold:.4f}",
            values={"confidence": signal.confidence, "threshold": threshold},
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
    """Spot longs. Single-position mode: one position per symbol, a SELL exits it, and no
    entry while the position or its exit is pending. Otherwise BUYs may add to a position
    (within the exposure caps). A new position needs a free slot (max_open_positions)."""
    action = ctx.analysis.signal.action
    single = ctx.trading.single_position
    if action is Action.BUY:
        if single and ctx.position is not None:
            return Reason(
                code=ReasonCode.SKIP_POSITION_OPEN,
                detail=f"already long {ctx.position.amount}; single-position mode",
                values={"position_amount": str(ctx.position.amount)},
            )
        if single and ctx.pending_exit:
            return Reason(
                code=ReasonCode.SKIP_EXIT_PENDING,
                detail="the previous position's exit is still pending",
            )
        if ctx.position is None and ctx.open_positions >= ctx.settings.max_open_positions:
            return Reason(
                code=ReasonCode.SKIP_MAX_POSITIONS,
                detail=f"{ctx.open_positions} positions open or pending; "
                f"max {ctx.settings.max_open_positions}",
                values={"open": ctx.open_positions, "max": ctx.settings.max_open_positions},
            )
        return None
    if action is Action.SELL:
        if ctx.position is None:
            return Reason(
                code=ReasonCode.SKIP_NO_POSITION,
                detail="nothing to sell",
                values={"position_amount": "0"},
            )
        if ctx.pending_exit:
            return Reason(code=ReasonCode.SKIP_EXIT_PENDING, detail="an exit order is already live")
    return None


ENTRY_RULES: tuple[Rule, ...] = (
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
    too_small = market.size_problem(amount, price)
    if too_small is not None:
        return Reason(
            code=ReasonCode(too_small.code), detail=too_small.detail, values=too_small.values
        )
    if ctx.analysis.signal.action is Action.BUY:
        needed = notional * (1 + market.taker_fee)
        if needed > ctx.quote_free:
            return Reason(
                code=ReasonCode.INSUFFICIENT_BALANCE,
                detail=f"needs {needed} {market.quote}, {ctx.quote_free} free",
                values={"needed": str(needed), "free": str(ctx.quote_free)},
            )
    elif amount > ctx.base_for_exit:
        return Reason(
            code=ReasonCode.INSUFFICIENT_BALANCE,
            detail=f"needs {amount} {market.base}, {ctx.base_free} free "
            f"+ {ctx.protected_base} held by protective orders",
            values={
                "needed": str(amount),
                "free": str(ctx.base_free),
                "protected": str(ctx.protected_base),
            },
        )
    return None
