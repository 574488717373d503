"""Kestrel's boundary models. Import from here: `from kestrel.models import Order`."""

from kestrel.models._base import KestrelModel, Money, simulated_clock, utcnow
from kestrel.models.analysis import (
    Action,
    AnalysisResult,
    Decision,
    Reason,
    ReasonCode,
    RiskVerdict,
    Signal,
)
from kestrel.models.events import Event, EventType
from kestrel.models.market import (
    TIMEFRAME_SECONDS,
    Candle,
    CandleSeries,
    MarketSpec,
    SizeProblem,
    SizeProblemCode,
    Ticker,
    timeframe_ms,
)
from kestrel.models.orders import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    StatusSource,
    check_transition,
)
from kestrel.models.positions import Position, PositionStatus

__all__ = [
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "TIMEFRAME_SECONDS",
    "Action",
    "AnalysisResult",
    "Candle",
    "CandleSeries",
    "Decision",
    "Event",
    "EventType",
    "Fill",
    "KestrelModel",
    "MarketSpec",
    "Money",
    "Order",
    "OrderRole",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionStatus",
    "Reason",
    "ReasonCode",
    "RiskVerdict",
    "Side",
    "Signal",
    "SizeProblem",
    "SizeProblemCode",
    "StatusSource",
    "Ticker",
    "check_transition",
    "simulated_clock",
    "timeframe_ms",
    "utcnow",
]
