"""decide: the analysis and the risk verdict become one Decision with its reasons, and for a
trade, the deterministic client order id and the protective stop-loss / take-profit levels."""

from __future__ import annotations

from decimal import Decimal

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
from kestrel.money import round_to_tick
from kestrel.settings import RiskSettings


def decide(
    *,
    cycle: str,
    mode: TradingMode,
    analysis: AnalysisResult,
    verdict: RiskVerdict,
    market: MarketSpec,
    risk: RiskSettings,
) -> Decision:
    if not verdict.approved:
        return Decision(
            cycle_id=cycle, symbol=analysis.symbol, action=Action.HOLD, reasons=verdict.reasons
        )
    action = analysis.signal.action
    price = verdict.price or analysis.price
    stop_loss = take_profit = None
    if action is Action.BUY:
        signal = analysis.signal
        stop_loss = signal.suggested_stop_loss or round_to_tick(
            price * (1 - Decimal("0.03")), market.price_tick
        )
        take_profit = signal.suggested_take_profit or round_to_tick(
            price * (1 + Decimal("0.06")), market.price_tick
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
        client_order_id=client_order_id(mode, cycle, analysis.symbol, role),
    )
