"""Protective levels of a long entry from the symbol's profile: stop-loss and take-profit at a
percent of the price or at ATR multiples (the ATR the analysis stored).

An ATR stop is kept between the profile's min_stop_pct and max_stop_pct of the price, so a
dead-flat market cannot put the stop one tick away (and blow up a risk-based size) and a
wild one cannot put it at zero. An analyst's suggested level is taken only when it is more
careful than the profile's: a stop tighter than the profile's (but not inside min_stop_pct),
a target nearer than the profile's (but above the price).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from kestrel.models import AnalysisResult, MarketSpec
from kestrel.money import ZERO, to_decimal
from kestrel.strategy.profiles import Distance, StrategyProfile

HUNDRED = Decimal("100")


class Levels(BaseModel):
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    stop_distance_pct: Decimal | None = None
    source: str = "profile"
    problem: str = ""


def _distance(distance: Distance, price: Decimal, atr: Decimal | None) -> Decimal | None:
    if distance.kind == "percent":
        return price * distance.value / HUNDRED
    return None if atr is None else atr * distance.value


def protective_levels(
    profile: StrategyProfile, analysis: AnalysisResult, market: MarketSpec, price: Decimal
) -> Levels:
    raw_atr = analysis.indicators.get("atr")
    atr = to_decimal(raw_atr) if raw_atr is not None and raw_atr > 0 else None
    stop_distance = _distance(profile.stop_loss, price, atr)
    target_distance = _distance(profile.take_profit, price, atr)
    if stop_distance is None or target_distance is None or price <= 0:
        return Levels(problem=f"no ATR to place {profile.stop_loss.describe()} stop / target")
    low = price * profile.min_stop_pct / HUNDRED
    high = price * profile.max_stop_pct / HUNDRED
    stop_distance = min(max(stop_distance, low), high)
    stop = price - stop_distance
    target = price + target_distance
    signal = analysis.signal
    source = "profile"
    suggested_stop = signal.suggested_stop_loss
    if suggested_stop is not None and stop < suggested_stop <= price - low:
        stop, source = suggested_stop, "analyst"
    suggested_target = signal.suggested_take_profit
    if suggested_target is not None and price < suggested_target < target:
        target, source = suggested_target, "analyst"
    stop = market.stop_price("sell", max(stop, ZERO))
    target = market.limit_price("sell", target)
    if stop <= 0 or stop >= price:
        return Levels(problem=f"stop {stop} not between 0 and the price {price}")
    return Levels(
        stop_loss=stop,
        take_profit=target,
        stop_distance_pct=(price - stop) / price * HUNDRED,
        source=source,
    )
