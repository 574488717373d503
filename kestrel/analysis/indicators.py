"""Indicators through pandas-ta. Each spec names its columns so the analysis can store the
exact values it used."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pandas as pd


class IndicatorSpec(BaseModel):
    rsi_length: int = Field(default=14, ge=2)
    ema_fast: int = Field(default=9, ge=2)
    ema_slow: int = Field(default=21, ge=3)

    @property
    def warmup(self) -> int:
        """Candles needed before every indicator has a value on the last two rows."""
        return max(self.rsi_length, self.ema_slow) + 2


def compute_indicators(frame: pd.DataFrame, spec: IndicatorSpec) -> pd.DataFrame:
    """Return a frame with one column per indicator, aligned to `frame`'s index."""
    import pandas as pd
    import pandas_ta as ta

    close = frame["close"]
    columns = {
        "rsi": ta.rsi(close, length=spec.rsi_length),
        "ema_fast": ta.ema(close, length=spec.ema_fast),
        "ema_slow": ta.ema(close, length=spec.ema_slow),
    }
    return pd.DataFrame(columns, index=frame.index)


def last_values(indicators: pd.DataFrame, row: int = -1) -> dict[str, float | None]:
    """Plain floats (None for NaN) from one row, ready to store on the AnalysisResult."""
    values: dict[str, float | None] = {}
    for name, value in indicators.iloc[row].items():
        number = float(value)
        values[str(name)] = None if math.isnan(number) else number
    return values
