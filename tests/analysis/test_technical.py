"""The technical analyst's rule, row by row at and around each threshold of each profile."""

from __future__ import annotations

from typing import Any

import pytest

from kestrel.analysis.base import consult
from kestrel.analysis.engine import analyze, prepare
from kestrel.analysis.technical import TechnicalAnalyst, technical_signal
from kestrel.models import Action, CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.strategy.profiles import BUILTIN_PROFILES, StrategyProfile, build_profiles

SWING_C = BUILTIN_PROFILES["SWING/CONSERVATIVE"]  # require_macd, RSI 70/30, volume 1.2
SWING_A = BUILTIN_PROFILES["SWING/AGGRESSIVE"]  # RSI 75/25, nothing required
INTRADAY_C = BUILTIN_PROFILES["INTRADAY/CONSERVATIVE"]  # + require_trend, min spread 0.02%
SCALP_C = BUILTIN_PROFILES["SCALP/CONSERVATIVE"]  # mean reversion, RSI 75/25

# Neutral rows: fast below slow on both (no cross), mid-range RSI, everything defined.
PREV = {
    "close": 100.0,
    "ema_fast": 99.0,
    "ema_slow": 100.0,
    "sma_fast": 99.5,
    "sma_slow": 100.0,
    "bb_lower": 95.0,
    "bb_upper": 105.0,
}
LAST = {
    "close": 100.5,
    "rsi": 50.0,
    "macd_hist": 0.1,
    "ema_fast": 99.2,
    "ema_slow": 100.0,
    "sma_fast": 99.6,
    "sma_slow": 99.0,
    "bb_lower": 95.0,
    "bb_mid": 100.0,
    "bb_upper": 105.0,
    "volume_ratio": 1.0,
}
CROSS_UP = {"ema_fast": 100.2, "ema_slow": 100.0}  # last row; prev has fast < slow
CROSS_DOWN_PREV = {"ema_fast": 100.5, "ema_slow": 100.0}
CROSS_DOWN = {"ema_fast": 99.5, "ema_slow": 100.0}


def judge(
    profile: StrategyProfile, last: dict[str, float], prev: dict[str, float] | None = None
) -> Signal:
    return technical_signal({**PREV, **(prev or {})}, {**LAST, **last}, profile, "technical")


CASES: list[tuple[str, StrategyProfile, dict[str, Any], dict[str, Any], Action]] = [
    ("no cross", SWING_C, {}, {}, Action.HOLD),
    ("cross up", SWING_C, {}, CROSS_UP, Action.BUY),
    ("cross up from equality", SWING_C, {"ema_fast": 100.0}, CROSS_UP, Action.BUY),
    ("cross up, RSI just below overbought", SWING_C, {}, {**CROSS_UP, "rsi": 69.99}, Action.BUY),
    ("cross up, RSI at overbought: exit", SWING_C, {}, {**CROSS_UP, "rsi": 70.0}, Action.SELL),
    ("aggressive tolerates RSI 74.9", SWING_A, {}, {**CROSS_UP, "rsi": 74.9}, Action.BUY),
    ("conservative needs MACD: hist 0", SWING_C, {}, {**CROSS_UP, "macd_hist": 0.0}, Action.HOLD),
    ("conservative, hist just positive", SWING_C, {}, {**CROSS_UP, "macd_hist": 1e-9}, Action.BUY),
    ("aggressive ignores MACD", SWING_A, {}, {**CROSS_UP, "macd_hist": -1.0}, Action.BUY),
    ("intraday needs the trend", INTRADAY_C, {}, {**CROSS_UP, "sma_slow": 100.5}, Action.HOLD),
    ("intraday above trend", INTRADAY_C, {}, {**CROSS_UP, "sma_slow": 100.49}, Action.BUY),
    (
        "spread below 0.02% is noise",
        INTRADAY_C,
        {},
        {**CROSS_UP, "ema_fast": 100.019, "sma_slow": 99},
        Action.HOLD,
    ),
    (
        "spread just above 0.02% counts",
        INTRADAY_C,
        {},
        {**CROSS_UP, "ema_fast": 100.0201, "sma_slow": 99},
        Action.BUY,
    ),
    ("cross down", SWING_C, CROSS_DOWN_PREV, {**CROSS_DOWN, "macd_hist": -0.1}, Action.SELL),
    ("cross down needs MACD (conservative)", SWING_C, CROSS_DOWN_PREV, CROSS_DOWN, Action.HOLD),
    ("cross down, aggressive", SWING_A, CROSS_DOWN_PREV, CROSS_DOWN, Action.SELL),
    ("overbought without cross", SWING_C, {}, {"rsi": 70.0}, Action.SELL),
    ("RSI just below overbought", SWING_C, {}, {"rsi": 69.99}, Action.HOLD),
    (
        "band re-entry, swing ignores it",
        SWING_C,
        {"close": 94.0},
        {"close": 95.5, "rsi": 35.0},
        Action.HOLD,
    ),
    (
        "band re-entry, scalp buys",
        SCALP_C,
        {"close": 94.0},
        {"close": 95.5, "rsi": 35.0},
        Action.BUY,
    ),
    (
        "band re-entry, RSI too high",
        SCALP_C,
        {"close": 94.0},
        {"close": 95.5, "rsi": 35.01},
        Action.HOLD,
    ),
    (
        "upper band fall-back, scalp sells",
        SCALP_C,
        {"close": 106.0},
        {"close": 104.0, "rsi": 60.0},
        Action.SELL,
    ),
]


@pytest.mark.parametrize(
    ("profile", "prev", "last", "action"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule(
    profile: StrategyProfile, prev: dict[str, float], last: dict[str, float], action: Action
) -> None:
    signal = judge(profile, last, prev)
    assert signal.action is action, signal.reasoning
    assert (signal.confidence > 0) is (action is not Action.HOLD)
    assert 0 <= signal.confidence <= 1


def test_confirmations_raise_confidence() -> None:
    bare = judge(SWING_A, {**CROSS_UP, "macd_hist": -1, "volume_ratio": 0.5, "close": 99.0})
    confirmed = judge(SWING_A, {**CROSS_UP, "macd_hist": 1, "volume_ratio": 2.0, "close": 101})
    assert bare.action is confirmed.action is Action.BUY
    assert confirmed.confidence > bare.confidence
    # 0.5 base + RSI room + 0.1 MACD + 0.1 volume + 0.05 above BB mid + spread bonus
    room = (75 - 50) / (75 - 25)
    assert confirmed.confidence == pytest.approx(0.5 + 0.15 * room + 0.25 + 0.02, abs=1e-4)


def test_sma_crossover_profiles() -> None:
    profile = build_profiles(
        {"SMA": {"base": "SWING/AGGRESSIVE", "indicators": {"crossover": "sma"}}}
    )["SMA"]
    cross = {"sma_fast": 100.2, "sma_slow": 100.0}
    assert judge(profile, cross).action is Action.BUY
    # An EMA cross with the SMAs still apart is no trigger for this profile.
    assert judge(profile, {**CROSS_UP, "sma_fast": 98.5}).action is Action.HOLD


def test_deterministic_and_abstains_when_warming_up(series: CandleSeries) -> None:
    data = prepare(series)
    assert consult(TechnicalAnalyst(), data) == consult(TechnicalAnalyst(), data)
    short = prepare(series.model_copy(update={"candles": series.candles[:20]}))
    vote = consult(TechnicalAnalyst(), short)
    assert isinstance(vote, Abstention) and vote.kind == "insufficient_data"


def test_analysis_signals_match_the_rule_on_stored_values(series: CandleSeries) -> None:
    """The values an analysis stores are enough to recompute its verdict (the audit trail)."""
    for end in range(60, len(series.candles)):
        window = series.model_copy(update={"candles": series.candles[:end]})
        result = analyze(window, SWING_C)
        values = {k: v for k, v in result.indicators.items() if v is not None}
        prev = {k.removeprefix("prev_"): v for k, v in values.items() if k.startswith("prev_")}
        last = {k: v for k, v in values.items() if not k.startswith("prev_")}
        again = technical_signal(prev, last, SWING_C, "technical")
        assert (again.action, again.confidence) == (result.signal.action, result.signal.confidence)
