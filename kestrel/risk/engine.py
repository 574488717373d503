"""assess: a signal and its context in, a RiskVerdict out (approved or every reason not)."""

from __future__ import annotations

from decimal import Decimal

from kestrel.models import Action, Reason, ReasonCode, RiskVerdict
from kestrel.money import round_down_to_step
from kestrel.risk.context import RiskContext
from kestrel.risk.rules import ENTRY_RULES, check_size


def size_order(ctx: RiskContext) -> Decimal:
    """BUY: the configured quote amount at the current price; SELL: the whole position,
    capped by what the wallet actually holds. Always rounded down to the market's step."""
    price = ctx.analysis.price
    if ctx.analysis.signal.action is Action.SELL:
        held = ctx.position.amount if ctx.position else Decimal("0")
        return round_down_to_step(min(held, ctx.base_free), ctx.market.amount_step)
    if ctx.quote_to_usd is None or ctx.quote_to_usd <= 0:
        return Decimal("0")
    quote_amount = ctx.item.trade_amount_usd / ctx.quote_to_usd
    return round_down_to_step(quote_amount / price, ctx.market.amount_step)


def assess(ctx: RiskContext) -> RiskVerdict:
    action = ctx.analysis.signal.action
    if action is Action.HOLD:
        return RiskVerdict(
            approved=False,
            reasons=[Reason(code=ReasonCode.SKIP_NO_SIGNAL, detail=ctx.analysis.signal.reasoning)],
        )
    blocking = [reason for rule in ENTRY_RULES if (reason := rule(ctx)) is not None]
    if blocking:
        return RiskVerdict(approved=False, reasons=blocking)
    if action is Action.BUY and ctx.quote_to_usd is None:
        return RiskVerdict(
            approved=False,
            reasons=[
                Reason(
                    code=ReasonCode.SKIP_NO_PRICE,
                    detail=f"no USD price for {ctx.market.quote} to size the order",
                )
            ],
        )
    amount = size_order(ctx)
    price = ctx.analysis.price
    size_problem = check_size(ctx, amount, price)
    if size_problem is not None:
        return RiskVerdict(approved=False, reasons=[size_problem], amount=amount, price=price)
    code = ReasonCode.SIGNAL_BUY if action is Action.BUY else ReasonCode.SIGNAL_SELL
    return RiskVerdict(
        approved=True,
        reasons=[
            Reason(code=code, detail=ctx.analysis.signal.reasoning),
            Reason(code=ReasonCode.APPROVED, values={"amount": str(amount), "price": str(price)}),
        ],
        amount=amount,
        price=price,
    )
