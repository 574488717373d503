"""The default analyst: EMA crossover confirmed by RSI. Deterministic, no network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kestrel.models import Action, Signal

if TYPE_CHECKING:
    import pandas as pd


class TechnicalAnalyst:
    """BUY when the fast EMA crosses above the slow one and RSI is not overbought;
    SELL when it crosses below, or RSI is overbought. Confidence grows with the EMA spread
    and with RSI room to move."""

    name = "technical"

    def __init__(self, overbought: float = 70.0, oversold: float = 30.0) -> None:
        self.overbought = overbought
        self.oversold = oversold

    def judge(self, indicators: pd.DataFrame) -> Signal:
        prev, last = indicators.iloc[-2], indicators.iloc[-1]
        if indicators.iloc[-2:].isna().any().any():
            return Signal(action=Action.HOLD, confidence=0.0, reasoning="indicators warming up")
        rsi = float(last["rsi"])
        fast, slow = float(last["ema_fast"]), float(last["ema_slow"])
        spread = abs(fast - slow) / slow
        crossed_up = prev["ema_fast"] <= prev["ema_slow"] and fast > slow
        crossed_down = prev["ema_fast"] >= prev["ema_slow"] and fast < slow
        if crossed_up and rsi < self.overbought:
            room = (self.overbought - rsi) / (self.overbought - self.oversold)
            confidence = min(1.0, 0.5 + 0.3 * min(room, 1.0) + min(spread * 100, 0.2))
            return Signal(
                action=Action.BUY,
                confidence=round(confidence, 4),
                reasoning=f"EMA fast {fast:.6g} crossed above slow {slow:.6g}; RSI {rsi:.1f}",
                analyst=self.name,
            )
        if crossed_down or rsi >= self.overbought:
            why = "EMA fast crossed below slow" if crossed_down else "RSI overbought"
            confidence = min(1.0, 0.6 + min(spread * 100, 0.2) + (0.1 if crossed_down else 0.0))
            return Signal(
                action=Action.SELL,
                confidence=round(confidence, 4),
                reasoning=f"{why}; fast {fast:.6g} slow {slow:.6g} RSI {rsi:.1f}",
                analyst=self.name,
            )
        trend = "up" if fast > slow else "down"
        return Signal(
            action=Action.HOLD,
            confidence=0.0,
            reasoning=f"no crossover (trend {trend}); RSI {rsi:.1f}",
            analyst=self.name,
        )
