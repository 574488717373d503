"""Candles to a pandas frame: the one place where our validated models meet indicator math."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kestrel.models import CandleSeries

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def candles_to_frame(series: CandleSeries) -> pd.DataFrame:
    """Plain tuples rather than model_dump(): building the frame is a visible share of a
    whole analysis (see bench/analysis.py)."""
    import pandas as pd

    rows = [(c.timestamp, c.open, c.high, c.low, c.close, c.volume) for c in series.candles]
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    frame.index = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame
