"""Risk: safety gates, rules and sizing between a signal and an order; every verdict has
reasons with the numbers behind them."""

from kestrel.risk.context import DailyPnl, Exposure, RiskContext
from kestrel.risk.engine import assess

__all__ = ["DailyPnl", "Exposure", "RiskContext", "assess"]
