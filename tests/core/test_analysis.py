"""Analysis on real candles, indicators checked against TA-Lib (an independent implementation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kestrel.analysis import IndicatorSpec, analyze
from kestrel.analysis.frame import candles_to_frame
from kestrel.analysis.indicators import compute_indicators
from kestrel.models import Action, Candle, CandleSeries


def load(path: Path, symbol: str, timeframe: str) -> CandleSeries:
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    candles = [Candle.from_ccxt(list(row)) for row in rows]
    return CandleSeries(symbol=symbol, timeframe=timeframe, candles=candles, source=str(path))


@pytest.fixture
def btc(shared_data_dir: Path) -> CandleSeries:
    return load(shared_data_dir / "ohlcv" / "BTC_USDT-1h.csv", "BTC/USDT", "1h")


def test_indicators_match_talib(btc: CandleSeries) -> None:
    talib = pytest.importorskip("talib")
    spec = IndicatorSpec()
    ours = compute_indicators(candles_to_frame(btc), spec)
    close = np.array([c.close for c in btc.candles])
    reference = {
        "rsi": talib.RSI(close, timeperiod=spec.rsi_length),
        "ema_fast": talib.EMA(close, timeperiod=spec.ema_fast),
        "ema_slow": talib.EMA(close, timeperiod=spec.ema_slow),
    }
    for name, expected in reference.items():
        # Both converge after their different seedings; compare the settled tail.
        np.testing.assert_allclose(ours[name].to_numpy()[100:], expected[100:], rtol=1e-6)


def test_analysis_stores_values_and_signals_over_real_data(btc: CandleSeries) -> None:
    actions = set()
    for end in range(60, len(btc.candles), 5):
        window = btc.model_copy(update={"candles": btc.candles[end - 60 : end]})
        result = analyze(window)
        assert result.candle_timestamp == window.candles[-1].timestamp
        assert set(result.indicators) == {"rsi", "ema_fast", "ema_slow"}
        actions.add(result.signal.action)
    assert {Action.BUY, Action.SELL, Action.HOLD} <= actions


def test_too_few_candles_holds() -> None:
    candles = [
        Candle(timestamp=i * 60_000, open=1, high=1, low=1, close=1, volume=1) for i in range(5)
    ]
    result = analyze(CandleSeries(symbol="A/B", timeframe="1m", candles=candles, source="t"))
    assert result.signal.action is Action.HOLD
    assert "need" in result.signal.reasoning
