"""decide: the analysis and the risk verdict become one Decision with its reasons, and for a
trade, the deterministic client order id and the protective stop-loss / take-profit levels.

The levels come from the symbol's strategy profile (percent or ATR multiples, see
kestrel.risk.levels); the verdict carries the ones its size was computed for, and those are
the ones used, so the size and the stop can never disagree.
"""

from __future__ import annotations

from kestrel.ids import client_order_id
from kestrel.mode import TradingMode
from kestrel.models import (
    Action,
    AnalysisResult,
    Decision,
    MarketSpec,
    OrderRole,
    OrderType,
    RiskVerdict,
)
from kestrel.risk.levels import protective_levels
from kestrel.strategy.builtin import profile_identity
from kestrel.strategy.profiles import BUILTIN_PROFILES, FALLBACK_PROFILE, StrategyProfile


def decide(
    *,
    cycle: str,
    mode: TradingMode,
    installation: str,
    analysis: AnalysisResult,
    verdict: RiskVerdict,
    market: MarketSpec,
    profile: StrategyProfile | None = None,
) -> Decision:
    profile = profile or BUILTIN_PROFILES[FALLBACK_PROFILE]
    strategy = profile_identity(profile).ref
    if not verdict.approved or verdict.amount <= 0 or analysis.signal.action is Action.HOLD:
        return Decision(
            cycle_id=cycle,
            symbol=analysis.symbol,
            action=Action.HOLD,
            reasons=verdict.reasons,
            profile=profile.name,
            strategy=strategy,
        )
    action = analysis.signal.action
    price = verdict.price or analysis.price
    stop_loss = take_profit = None
    if action is Action.BUY:
        stop_loss, take_profit = verdict.stop_loss, verdict.take_profit
        if stop_loss is None or take_profit is None:
            levels = protective_levels(profile, analysis, market, price)
            stop_loss, take_profit = levels.stop_loss, levels.take_profit
        if stop_loss is None:  # never enter without a stop
            return Decision(
                cycle_id=cycle,
                symbol=analysis.symbol,
                action=Action.HOLD,
                reasons=verdict.reasons,
                profile=profile.name,
                strategy=strategy,
            )
    role = OrderRole.PRIMARY if action is Action.BUY else OrderRole.EXIT
    return Decision(
        cycle_id=cycle,
        symbol=analysis.symbol,
        action=action,
        reasons=verdict.reasons,
        order_type=OrderType.MARKET,
        amount=verdict.amount,
        price=price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        client_order_id=client_order_id(
            mode, cycle, analysis.symbol, role, installation=installation
        ),
        profile=profile.name,
        strategy=strategy,
    )
