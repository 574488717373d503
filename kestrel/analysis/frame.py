"""Candles to a pandas frame: the one place where our validated models meet indicator math."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kestrel.models import CandleSeries

if TYPE_CHECKING:
    import pandas as pd


def candles_to_frame(series: CandleSeries) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(
        [c.model_dump() for c in series.candles],
        columns=["timestamp", "open", "high", "low", "close", "volume"],
    )
    frame.index = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame
