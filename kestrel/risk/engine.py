"""assess: a signal and its context in, a RiskVerdict out - approved with its size and
protective levels, or refused with every reason (and the numbers behind each).

The order: a HOLD (or a SELL with nothing to sell) is no trade; the safety gates and the
rules all run (a refusal lists every reason at once); then sizing, clipped by the caps; then
the market minimums and the balance on the final, rounded amount. A refused verdict never
carries an amount.
"""

from __future__ import annotations

from kestrel.models import Action, AnalysisResult, Reason, ReasonCode, RiskVerdict
from kestrel.risk.context import RiskContext
from kestrel.risk.gates import BOOK_GATES, SAFETY_GATES
from kestrel.risk.levels import Levels, protective_levels
from kestrel.risk.rules import ENTRY_RULES, check_size
from kestrel.risk.sizing import size_buy, size_sell


def hold_reason(analysis: AnalysisResult) -> Reason:
    """Why there is nothing to trade: too little data, a panel that did not agree, or no
    signal."""
    signal = analysis.signal
    if not analysis.enough_data:
        return Reason(code=ReasonCode.SKIP_INSUFFICIENT_DATA, detail=signal.reasoning)
    consensus = analysis.consensus
    if (
        consensus is not None
        and consensus.mode == "SWARM"
        and not consensus.reached
        and consensus.voters > 0
        and (consensus.support.get("BUY", 0) > 0 or consensus.support.get("SELL", 0) > 0)
    ):
        return Reason(
            code=ReasonCode.SKIP_NO_CONSENSUS,
            detail=signal.reasoning,
            values={
                "support": consensus.support,
                "threshold": consensus.threshold,
                "voters": consensus.voters,
                "abstained": consensus.abstained,
            },
        )
    return Reason(
        code=ReasonCode.SKIP_NO_SIGNAL,
        detail=signal.reasoning,
        values={"analyst": signal.analyst, "confidence": signal.confidence},
    )


def refused(reasons: list[Reason]) -> RiskVerdict:
    return RiskVerdict(approved=False, reasons=reasons)


def assess(ctx: RiskContext) -> RiskVerdict:
    analysis = ctx.analysis
    signal = analysis.signal
    action = signal.action
    if action is Action.HOLD:
        return refused([hold_reason(analysis)])
    if action is Action.SELL and ctx.position is None:
        # Spot: a SELL only exits a long; without one there is nothing to trade. The book-wide
        # gates are still reported (an operator wants to see that the kill switch held).
        gates = [reason for gate in BOOK_GATES if (reason := gate(ctx))]
        return refused([*gates, Reason(code=ReasonCode.SKIP_NO_POSITION, detail="nothing to sell")])
    blocking = [reason for check in (*SAFETY_GATES, *ENTRY_RULES) if (reason := check(ctx))]
    if blocking:
        return refused(blocking)
    price = analysis.price
    notes: list[Reason] = []
    levels = Levels()
    if action is Action.BUY:
        levels = protective_levels(ctx.profile, analysis, ctx.market, price)
        if levels.stop_loss is None:
            return refused([Reason(code=ReasonCode.SKIP_INSUFFICIENT_DATA, detail=levels.problem)])
        sized = size_buy(ctx, levels)
        if sized.block is not None:
            return refused([*sized.clipped, sized.block])
        amount = sized.amount
        notes.extend(sized.clipped)
        sizing_values = {
            "method": ctx.trading.sizing.method,
            "wanted_usd": str(sized.wanted_usd),
            "budget_usd": str(sized.budget_usd),
        }
        if sized.budget_quote is not None:  # sized in the quote: it has no USD price
            sizing_values = {"method": "fixed_quote", "budget_quote": str(sized.budget_quote)}
    else:
        amount = size_sell(ctx)
        sizing_values = {"method": "exit_position"}
    size_problem = check_size(ctx, amount, price)
    if size_problem is not None:
        size_problem.values.setdefault("sized_amount", str(amount))
        return refused([*notes, size_problem])
    reasons = [
        Reason(
            code=ReasonCode.SIGNAL_BUY if action is Action.BUY else ReasonCode.SIGNAL_SELL,
            detail=signal.reasoning,
            values={
                "confidence": signal.confidence,
                "threshold": ctx.min_confidence,
                "analyst": signal.analyst,
                "profile": ctx.profile.name,
            },
        )
    ]
    if action is Action.SELL and ctx.position is not None:
        position = ctx.position
        reasons.append(
            Reason(
                code=ReasonCode.EXIT_OPPOSITE_SIGNAL,
                detail=f"SELL closes the open long of {position.amount} "
                f"@ {position.avg_entry_price}",
                values={
                    "position_amount": str(position.amount),
                    "avg_entry_price": str(position.avg_entry_price),
                    "unrealized_pnl": str(position.unrealized_pnl(price)),
                },
            )
        )
    reasons.extend(notes)
    notional = amount * price
    reasons.append(
        Reason(
            code=ReasonCode.APPROVED,
            values={
                "amount": str(amount),
                "price": str(price),
                "notional": str(notional),
                "notional_usd": str(notional * ctx.quote_to_usd) if ctx.quote_to_usd else None,
                "stop_loss": str(levels.stop_loss) if levels.stop_loss else None,
                "take_profit": str(levels.take_profit) if levels.take_profit else None,
                "stop_distance_pct": str(levels.stop_distance_pct)
                if levels.stop_distance_pct is not None
                else None,
                "levels_from": levels.source if levels.stop_loss else None,
                **sizing_values,
            },
        )
    )
    return RiskVerdict(
        approved=True,
        reasons=reasons,
        amount=amount,
        price=price,
        stop_loss=levels.stop_loss,
        take_profit=levels.take_profit,
    )
