"""Risk: rules and safety gates between a signal and an order; every verdict has reasons."""

from kestrel.risk.context import RiskContext
from kestrel.risk.engine import assess

__all__ = ["RiskContext", "assess"]
