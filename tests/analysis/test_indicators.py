"""Our indicator values against TA-Lib (an independent C implementation) on the real candles
in ../shared/data/ohlcv, for every built-in profile's parameters.

pandas-ta would silently delegate to TA-Lib when it is installed; compute_indicators passes
talib=False, so this compares two implementations, not TA-Lib with itself. Values that
are defined the same way must match from their first row (RSI, ATR: Wilder's seed; EMA:
SMA seed; SMA; Bollinger Bands with the population deviation). MACD seeds its two EMAs at
different rows in pandas-ta and TA-Lib, so it is compared once the seeds have decayed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kestrel.analysis.frame import candles_to_frame
from kestrel.analysis.indicators import compute_indicators
from kestrel.models import Candle, CandleSeries
from kestrel.strategy.profiles import BUILTIN_PROFILES, IndicatorSpec

talib = pytest.importorskip("talib")

FILES = ["BTC_USDT-1h.csv", "ETH_BTC-5m.csv", "XRP_ETH-5m.csv", "ZEC_BTC-1m.csv"]
# The distinct parameter sets of the built-in profiles (SWING/INTRADAY and SCALP).
SPECS: list[IndicatorSpec] = sorted(
    {p.indicators for p in BUILTIN_PROFILES.values()}, key=lambda spec: spec.rsi_length
)


def load(path: Path, rows: int = 3000) -> CandleSeries:
    data = np.loadtxt(path, delimiter=",", skiprows=1, max_rows=rows)
    base, _, rest = path.stem.partition("_")
    quote, _, timeframe = rest.partition("-")
    candles = [Candle.from_ccxt(list(row)) for row in data]
    return CandleSeries(
        symbol=f"{base}/{quote}", timeframe=timeframe, candles=candles, source=str(path)
    )


@functools.cache
def load_frame(path: Path) -> pd.DataFrame:
    return candles_to_frame(load(path))


@pytest.fixture(params=FILES)
def frame(request: pytest.FixtureRequest, shared_data_dir: Path) -> pd.DataFrame:
    return load_frame(shared_data_dir / "ohlcv" / request.param).copy()


def reference(frame: pd.DataFrame, spec: IndicatorSpec) -> dict[str, np.ndarray]:
    h, low, c, v = (frame[k].to_numpy(dtype=float) for k in ("high", "low", "close", "volume"))
    upper, middle, lower = talib.BBANDS(c, spec.bb_length, spec.bb_std, spec.bb_std, 0)
    macd, signal, hist = talib.MACD(c, spec.macd_fast, spec.macd_slow, spec.macd_signal)
    return {
        "rsi": talib.RSI(c, spec.rsi_length),
        "ema_fast": talib.EMA(c, spec.ema_fast),
        "ema_slow": talib.EMA(c, spec.ema_slow),
        "sma_fast": talib.SMA(c, spec.sma_fast),
        "sma_slow": talib.SMA(c, spec.sma_slow),
        "bb_lower": lower,
        "bb_mid": middle,
        "bb_upper": upper,
        "atr": talib.ATR(h, low, c, spec.atr_length),
        "volume_sma": talib.SMA(v, spec.volume_length),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
    }


EXACT = (
    "rsi",
    "ema_fast",
    "ema_slow",
    "sma_fast",
    "sma_slow",
    "bb_lower",
    "bb_mid",
    "bb_upper",
    "atr",
    "volume_sma",
)
SETTLED = ("macd", "macd_signal", "macd_hist")


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"rsi{spec.rsi_length}")
def test_values_match_talib(frame: pd.DataFrame, spec: IndicatorSpec) -> None:
    ours = compute_indicators(frame, spec)
    expected = reference(frame, spec)
    scale = float(frame["close"].abs().mean())
    for name in EXACT:
        mine, theirs = ours[name].to_numpy(), expected[name]
        assert np.array_equal(np.isnan(mine), np.isnan(theirs)), f"{name}: NaN rows differ"
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12 * scale, err_msg=name)
    for name in SETTLED:
        start = 10 * spec.macd_slow
        np.testing.assert_allclose(
            ours[name].to_numpy()[start:],
            expected[name][start:],
            rtol=1e-7,
            atol=1e-9 * scale,
            err_msg=name,
        )


def test_derived_columns(frame: pd.DataFrame) -> None:
    spec = IndicatorSpec()
    ours = compute_indicators(frame, spec).dropna()
    width = ours["bb_upper"] - ours["bb_lower"]
    np.testing.assert_allclose(
        ours["bb_pct"], (ours["close"] - ours["bb_lower"]) / width.where(width > 0), rtol=1e-9
    )
    np.testing.assert_allclose(ours["atr_pct"], ours["atr"] / ours["close"] * 100, rtol=1e-12)
    np.testing.assert_allclose(ours["volume_ratio"], ours["volume"] / ours["volume_sma"])


@pytest.mark.parametrize("name", sorted(BUILTIN_PROFILES))
def test_warmup_is_exactly_enough(frame: pd.DataFrame, name: str) -> None:
    """With `warmup` candles every indicator has a value on the last two rows (what the
    technical analyst compares); with one fewer, something is still missing."""
    spec = BUILTIN_PROFILES[name].indicators
    enough = compute_indicators(frame.iloc[: spec.warmup], spec)
    assert not enough.iloc[-2:].isna().any().any()
    short = compute_indicators(frame.iloc[: spec.warmup - 1], spec)
    assert short.iloc[-2:].isna().any().any()
