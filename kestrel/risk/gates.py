"""Safety gates: emergency stop, circuit breaker, daily loss limit, cooldown per symbol and side.

Unlike the rules they protect the whole book, not one order. In REAL mode every gate is on
whatever the settings say; in DEMO each can be switched off (trading.gates.<name> = false)
to study a strategy without them. Each returns a blocking Reason (with the numbers) or None.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kestrel.mode import TradingMode
from kestrel.models import Reason, ReasonCode
from kestrel.risk.context import RiskContext

Gate = Callable[[RiskContext], Reason | None]
HUNDRED = Decimal("100")


def gate_on(ctx: RiskContext, name: str) -> bool:
    """REAL: always. DEMO: as configured."""
    return ctx.mode is TradingMode.REAL or bool(getattr(ctx.trading.gates, name))


def emergency_stop(ctx: RiskContext) -> Reason | None:
    if ctx.emergency_stop and gate_on(ctx, "emergency_stop"):
        note = f": {ctx.emergency_stop_note}" if ctx.emergency_stop_note else ""
        return Reason(
            code=ReasonCode.BLOCKED_EMERGENCY_STOP,
            detail=f"emergency stop is set{note}",
            values={"active": True, "note": ctx.emergency_stop_note},
        )
    return None


def circuit_breaker(ctx: RiskContext) -> Reason | None:
    breaker = ctx.circuit_breaker
    if not (breaker.active and gate_on(ctx, "circuit_breaker")):
        return None
    until = breaker.cool_off_until.isoformat() if breaker.cool_off_until else "manual reset"
    return Reason(
        code=ReasonCode.BLOCKED_CIRCUIT_BREAKER,
        detail=f"circuit breaker tripped: {breaker.reason}; until {until}",
        values={
            "trigger": breaker.trigger,
            "streak": breaker.streak,
            "cool_off_until": breaker.cool_off_until.isoformat()
            if breaker.cool_off_until
            else None,
        },
    )


def daily_loss_limit_usd(ctx: RiskContext) -> Decimal | None:
    """The tighter of the USD limit and the % of start-of-day equity (None: no limit set),
    in the day's currency (`ctx.daily.currency`): a day measured in BTC has only the %."""
    gates = ctx.trading.gates
    limits = []
    daily = ctx.daily
    usd = daily is None or daily.currency == "USD"
    if gates.daily_loss_limit_usd is not None and usd:
        limits.append(gates.daily_loss_limit_usd)
    if gates.daily_loss_limit_pct is not None and daily and daily.start_equity_usd is not None:
        limits.append(daily.start_equity_usd * gates.daily_loss_limit_pct / HUNDRED)
    return min(limits) if limits else None


def daily_loss(ctx: RiskContext) -> Reason | None:
    if ctx.daily is None or not gate_on(ctx, "daily_loss_limit"):
        return None
    gates = ctx.trading.gates
    daily = ctx.daily
    limit = daily_loss_limit_usd(ctx)
    values = {
        "day": daily.day,
        "pnl_usd": str(daily.pnl_usd),
        "realized_usd": str(daily.realized_usd),
        "unrealized_usd": str(daily.unrealized_usd),
        "start_equity_usd": str(daily.start_equity_usd)
        if daily.start_equity_usd is not None
        else None,
        "limit_usd": str(limit) if limit is not None else None,
        "limit_pct": str(gates.daily_loss_limit_pct) if gates.daily_loss_limit_pct else None,
        "currency": daily.currency,
    }
    currency = daily.currency
    if currency != "USD" and gates.daily_loss_limit_usd is not None and limit is None:
        # A USD amount with no USD price: fail closed, and say why.
        return Reason(
            code=ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
            detail=f"no USD valuation of the account (its equity is known in {currency} "
            f"only): the {gates.daily_loss_limit_usd} USD daily loss limit cannot be checked; "
            f"set daily_loss_limit_pct to measure it in {currency}",
            values=values,
        )
    if limit is None:
        if gates.daily_loss_limit_pct is not None:
            # A % limit we cannot evaluate: fail closed rather than trade unprotected.
            return Reason(
                code=ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
                detail="start-of-day equity unknown (no price values the account's holdings): "
                "the daily loss limit cannot be checked",
                values=values,
            )
        return None
    digits = 2 if currency == "USD" else 8
    if daily.pnl_usd <= -limit:
        return Reason(
            code=ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
            detail=f"today's PnL {daily.pnl_usd:.{digits}f} {currency} (realized "
            f"{daily.realized_usd:.{digits}f}, unrealized {daily.unrealized_usd:.{digits}f}) "
            f"reached the limit -{limit:.{digits}f}",
            values=values,
        )
    return None


def cooldown(ctx: RiskContext) -> Reason | None:
    side = ctx.analysis.signal.action.side
    if side is None or not gate_on(ctx, "cooldown"):
        return None
    last = ctx.last_fill_ms.get(side.value)
    if last is None:
        return None
    cooldown_ms = int(ctx.trading.gates.cooldown_candles * ctx.timeframe_ms)
    elapsed = ctx.now_ms - last
    if elapsed < cooldown_ms:
        return Reason(
            code=ReasonCode.SKIP_COOLDOWN_ACTIVE,
            detail=f"last {side.value} of {ctx.item.symbol} filled {elapsed / 1000:.0f}s ago; "
            f"cooldown {cooldown_ms / 1000:.0f}s",
            values={
                "side": side.value,
                "elapsed_ms": elapsed,
                "cooldown_ms": cooldown_ms,
                "remaining_ms": cooldown_ms - elapsed,
            },
        )
    return None


BOOK_GATES: tuple[Gate, ...] = (emergency_stop, circuit_breaker, daily_loss)
SAFETY_GATES: tuple[Gate, ...] = (*BOOK_GATES, cooldown)
BLOCKING_GATE_CODES = frozenset(
    {
        ReasonCode.BLOCKED_EMERGENCY_STOP,
        ReasonCode.BLOCKED_CIRCUIT_BREAKER,
        ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
        ReasonCode.SKIP_COOLDOWN_ACTIVE,
    }
)
