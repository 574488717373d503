"""Analysis: indicators (pandas-ta) and analysts that turn candles into a Signal.

pandas and pandas-ta are imported lazily, inside the functions that need them, so that
importing kestrel stays fast for the CLI.
"""

from kestrel.analysis.engine import analyze
from kestrel.analysis.indicators import IndicatorSpec

__all__ = ["IndicatorSpec", "analyze"]
