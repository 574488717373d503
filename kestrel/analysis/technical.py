"""The default analyst: deterministic, no network. A moving-average crossover (EMA or SMA, per
profile) is the trend trigger; RSI vetoes buying into overbought and calls exits; MACD,
volume, the Bollinger middle and the slow SMA trend confirm or weaken. SCALP profiles also
trade Bollinger Band re-entries at RSI extremes (mean reversion).

The profile's thresholds decide how much confirmation is required (CONSERVATIVE wants MACD
on its side, INTRADAY/CONSERVATIVE also the trend) and the confidence says how much was
found. The rule itself is `technical_signal`, a pure function of two indicator rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from kestrel.analysis.base import AnalystInput
from kestrel.errors import AnalystAbstained
from kestrel.models import Action, Signal
from kestrel.strategy.profiles import StrategyProfile

# Columns the rule reads from the candle before the last one (stored as prev_<name>).
PREVIOUS_ROW_COLUMNS = (
    "close", "ema_fast", "ema_slow", "sma_fast", "sma_slow", "bb_lower", "bb_upper",
)  # fmt: skip
NEEDED = (
    "close", "rsi", "macd_hist", "bb_lower", "bb_mid", "bb_upper", "sma_slow", "ema_fast",
    "ema_slow", "sma_fast",
)  # fmt: skip


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def technical_signal(
    prev: Mapping[str, float], last: Mapping[str, float], profile: StrategyProfile, name: str
) -> Signal:
    t = profile.thresholds
    kind = profile.indicators.crossover
    lengths = (
        (profile.indicators.ema_fast, profile.indicators.ema_slow)
        if kind == "ema"
        else (profile.indicators.sma_fast, profile.indicators.sma_slow)
    )
    pair = f"{kind.upper()} {lengths[0]}/{lengths[1]}"
    fast, slow = last[f"{kind}_fast"], last[f"{kind}_slow"]
    prev_fast, prev_slow = prev[f"{kind}_fast"], prev[f"{kind}_slow"]
    close, rsi, hist = last["close"], last["rsi"], last["macd_hist"]
    trend_sma = last["sma_slow"]
    volume_ratio = last.get("volume_ratio", math.nan)
    spread_pct = abs(fast - slow) / slow * 100.0
    crossed_up = prev_fast <= prev_slow and fast > slow and spread_pct >= t.min_spread_pct
    crossed_down = prev_fast >= prev_slow and fast < slow and spread_pct >= t.min_spread_pct
    volume_ok = not math.isnan(volume_ratio) and volume_ratio >= t.min_volume_ratio
    band_reentry_up = prev["close"] < prev["bb_lower"] and close >= last["bb_lower"]
    band_reentry_down = prev["close"] > prev["bb_upper"] and close <= last["bb_upper"]
    facts = (
        f"RSI {rsi:.1f}; MACD hist {hist:+.4g}; volume x{volume_ratio:.2f}; "
        f"close {close:.6g} vs BB mid {last['bb_mid']:.6g}, SMA{profile.indicators.sma_slow} "
        f"{trend_sma:.6g}; {pair} spread {spread_pct:.3f}%"
    )

    def signal(action: Action, confidence: float, why: str) -> Signal:
        return Signal(
            action=action,
            confidence=round(_clip(confidence), 4),
            reasoning=f"{why}; {facts}",
            analyst=name,
        )

    buy_trigger = ""
    if crossed_up:
        buy_trigger = f"{pair} crossed up"
    elif t.mean_reversion and band_reentry_up and rsi <= t.rsi_oversold + 10:
        buy_trigger = "close re-entered the lower Bollinger band from below"
    if buy_trigger and rsi < t.rsi_overbought:
        vetoes = []
        if t.require_macd and hist <= 0:
            vetoes.append("MACD histogram not positive")
        if t.require_trend and close <= trend_sma:
            vetoes.append("price not above the slow SMA")
        if vetoes:
            return signal(Action.HOLD, 0.0, f"{buy_trigger} but {' and '.join(vetoes)}")
        room = _clip((t.rsi_overbought - rsi) / (t.rsi_overbought - t.rsi_oversold))
        confidence = (
            0.5
            + 0.15 * room
            + (0.10 if hist > 0 else 0.0)
            + (0.10 if volume_ok else 0.0)
            + (0.05 if close > last["bb_mid"] else 0.0)
            + min(spread_pct * 0.1, 0.1)
            - (0.10 if close < trend_sma else 0.0)
        )
        return signal(Action.BUY, confidence, f"BUY: {buy_trigger}")

    if rsi >= t.rsi_overbought:
        beyond = _clip((rsi - t.rsi_overbought) / (100.0 - t.rsi_overbought))
        confidence = (
            0.6 + 0.15 * beyond + (0.10 if hist < 0 else 0.0) + (0.10 if volume_ok else 0.0)
        )
        return signal(Action.SELL, confidence, f"SELL: RSI overbought (>= {t.rsi_overbought:g})")

    sell_trigger = ""
    if crossed_down:
        sell_trigger = f"{pair} crossed down"
    elif t.mean_reversion and band_reentry_down:
        sell_trigger = "close fell back inside the upper Bollinger band"
    if sell_trigger:
        vetoes = []
        if crossed_down and t.require_macd and hist >= 0:
            vetoes.append("MACD histogram not negative")
        if crossed_down and t.require_trend and close >= trend_sma:
            vetoes.append("price not below the slow SMA")
        if vetoes:
            return signal(Action.HOLD, 0.0, f"{sell_trigger} but {' and '.join(vetoes)}")
        room = _clip((rsi - t.rsi_oversold) / (t.rsi_overbought - t.rsi_oversold))
        confidence = (
            0.55
            + 0.15 * room
            + (0.10 if hist < 0 else 0.0)
            + (0.10 if volume_ok else 0.0)
            + (0.05 if close < last["bb_mid"] else 0.0)
            + min(spread_pct * 0.1, 0.1)
            - (0.10 if close > trend_sma else 0.0)
        )
        return signal(Action.SELL, confidence, f"SELL: {sell_trigger}")

    trend = "up" if fast > slow else "down"
    return signal(Action.HOLD, 0.0, f"no trigger ({pair} trend {trend})")


class TechnicalAnalyst:
    """The default analyst of every profile (deterministic: same candles, same verdict)."""

    def __init__(self, name: str = "technical") -> None:
        self.name = name

    def judge(self, data: AnalystInput) -> Signal:
        frame = data.frame()
        if data.profile.plugin is not None:  # a plugin's own rules on its own indicators
            from kestrel.strategy.loader import strategy_for

            return strategy_for(data.profile).signal(frame)
        if len(frame) < 2:
            raise AnalystAbstained("insufficient_data", "needs two candles to see a crossover")
        rows = frame.iloc[-2:]
        missing = [c for c in NEEDED if rows[c].isna().any()]
        if missing:
            raise AnalystAbstained("insufficient_data", f"indicators warming up: {missing}")
        prev = {str(k): float(v) for k, v in rows.iloc[0].items()}
        last = {str(k): float(v) for k, v in rows.iloc[1].items()}
        return technical_signal(prev, last, data.profile, self.name)
