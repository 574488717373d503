"""Indicators through pandas-ta, one column per value, named so that an analysis can store
exactly what it used.

pandas-ta hands the work to TA-Lib when TA-Lib is installed (its `talib=True` default). We
always pass `talib=False`: the numbers must not depend on whether a C library happens to be
installed on the machine that trades, and TA-Lib stays an independent reference for tests.
RSI and ATR are built from pandas-ta's Wilder smoothing (rma) with Wilder's own seed (see
`_wilder_smooth`), so they equal the textbook (and TA-Lib) values from their first row.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from kestrel.strategy.profiles import IndicatorSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INDICATOR_COLUMNS", "IndicatorSpec", "compute_indicators", "last_values"]

INDICATOR_COLUMNS: tuple[str, ...] = (
    "close",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "ema_fast",
    "ema_slow",
    "sma_fast",
    "sma_slow",
    "bb_lower",
    "bb_mid",
    "bb_upper",
    "bb_pct",
    "atr",
    "atr_pct",
    "volume",
    "volume_sma",
    "volume_ratio",
)


def compute_indicators(frame: pd.DataFrame, spec: IndicatorSpec) -> pd.DataFrame:
    """A frame with one column per name in INDICATOR_COLUMNS, aligned to `frame`'s index.

    Bollinger Bands use the population standard deviation (ddof=0), as Bollinger defined
    them and as TA-Lib computes them; pandas-ta's own default is the sample deviation."""
    import pandas as pd
    import pandas_ta as ta

    close, high, low, volume = frame["close"], frame["high"], frame["low"], frame["volume"]
    macd = ta.macd(
        close, fast=spec.macd_fast, slow=spec.macd_slow, signal=spec.macd_signal, talib=False
    )
    bands = ta.bbands(
        close, length=spec.bb_length, lower_std=spec.bb_std, upper_std=spec.bb_std, ddof=0,
        talib=False,
    )  # fmt: skip
    atr = wilder_atr(high, low, close, spec.atr_length)
    rsi = wilder_rsi(close, spec.rsi_length)
    volume_sma = ta.sma(volume, length=spec.volume_length, talib=False)
    columns = {
        "close": close,
        "rsi": rsi,
        # pandas-ta orders MACD columns line, histogram, signal; bbands lower, mid, upper,
        # bandwidth, percent. Taken by position: the names embed float formatting.
        "macd": macd.iloc[:, 0],
        "macd_signal": macd.iloc[:, 2],
        "macd_hist": macd.iloc[:, 1],
        "ema_fast": ta.ema(close, length=spec.ema_fast, talib=False),
        "ema_slow": ta.ema(close, length=spec.ema_slow, talib=False),
        "sma_fast": ta.sma(close, length=spec.sma_fast, talib=False),
        "sma_slow": ta.sma(close, length=spec.sma_slow, talib=False),
        "bb_lower": bands.iloc[:, 0],
        "bb_mid": bands.iloc[:, 1],
        "bb_upper": bands.iloc[:, 2],
        "bb_pct": bands.iloc[:, 4],
        "atr": atr,
        "atr_pct": atr / close * 100.0,
        "volume": volume,
        "volume_sma": volume_sma,
        "volume_ratio": volume / volume_sma.where(volume_sma > 0),
    }
    return pd.DataFrame(columns, index=frame.index)


def _wilder_smooth(values: pd.Series, length: int) -> pd.Series:
    """Wilder's smoothing (pandas-ta's rma) seeded with the plain mean of values[1..length]:
    row 0 has no previous close, so neither a change nor a true range. NaN before `length`."""
    import pandas_ta as ta

    seeded = values.copy()
    if len(seeded) > length:
        seeded.iloc[length] = values.iloc[1 : length + 1].mean()
    seeded.iloc[: min(length, len(seeded))] = math.nan
    smoothed: pd.Series = ta.rma(seeded, length=length)
    return smoothed


def wilder_atr(high: pd.Series, low: pd.Series, close: pd.Series, length: int) -> pd.Series:
    """ATR as Wilder (and TA-Lib) define it. pandas-ta's `atr` seeds with the first row's
    high-low, which has no previous close; its values settle to the same within ~100 rows."""
    import pandas_ta as ta

    true_range = ta.true_range(high, low, close, talib=False)
    return _wilder_smooth(true_range, length)


def wilder_rsi(close: pd.Series, length: int) -> pd.Series:
    """RSI as Wilder defined it: average gain and loss seeded with the plain mean of the
    first `length` changes, then Wilder-smoothed (pandas-ta's rma).

    pandas-ta's own `rsi` starts the smoothing at the very first change instead; its values
    differ from Wilder's (and TA-Lib's) by ~0.2% a hundred candles later, so a signal would
    depend on how many candles were fetched. The first `length` rows are NaN."""
    change = close.diff()
    gain = _wilder_smooth(change.clip(lower=0), length)
    loss = _wilder_smooth((-change).clip(lower=0), length)
    total = gain + loss
    return (100.0 * gain / total.where(total > 0)).fillna(50.0).where(gain.notna())


def last_values(indicators: pd.DataFrame, row: int = -1) -> dict[str, float | None]:
    """Plain floats (None for NaN) from one row, ready to store on the AnalysisResult."""
    values: dict[str, float | None] = {}
    numbers = indicators.to_numpy(dtype=float)[row]
    for name, value in zip(indicators.columns, numbers, strict=True):
        number = float(value)
        values[str(name)] = None if math.isnan(number) or math.isinf(number) else number
    return values
