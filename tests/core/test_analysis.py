"""Analysis on real candles: every analysis stores the indicator values it used, and signals
of each kind come out of real data. Indicator values against TA-Lib: tests/analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kestrel.analysis import analyze
from kestrel.analysis.indicators import INDICATOR_COLUMNS
from kestrel.analysis.technical import PREVIOUS_ROW_COLUMNS
from kestrel.models import Action, Candle, CandleSeries


def load(path: Path, symbol: str, timeframe: str) -> CandleSeries:
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    candles = [Candle.from_ccxt(list(row)) for row in rows]
    return CandleSeries(symbol=symbol, timeframe=timeframe, candles=candles, source=str(path))


@pytest.fixture
def btc(shared_data_dir: Path) -> CandleSeries:
    return load(shared_data_dir / "ohlcv" / "BTC_USDT-1h.csv", "BTC/USDT", "1h")


def test_analysis_stores_values_and_signals_over_real_data(btc: CandleSeries) -> None:
    actions = set()
    expected = set(INDICATOR_COLUMNS) | {f"prev_{name}" for name in PREVIOUS_ROW_COLUMNS}
    for end in range(60, len(btc.candles), 5):
        window = btc.model_copy(update={"candles": btc.candles[end - 60 : end]})
        result = analyze(window)
        assert result.candle_timestamp == window.candles[-1].timestamp
        assert set(result.indicators) == expected
        assert all(v is not None for v in result.indicators.values())
        assert result.profile == "SWING/CONSERVATIVE"
        actions.add(result.signal.action)
    assert {Action.BUY, Action.SELL, Action.HOLD} <= actions


def test_too_few_candles_holds() -> None:
    candles = [
        Candle(timestamp=i * 60_000, open=1, high=1, low=1, close=1, volume=1) for i in range(5)
    ]
    result = analyze(CandleSeries(symbol="A/B", timeframe="1m", candles=candles, source="t"))
    assert result.signal.action is Action.HOLD
    assert not result.enough_data
    assert "need" in result.signal.reasoning
