"""Everything a risk verdict depends on, gathered once so the rules are pure functions."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from kestrel.models import AnalysisResult, MarketSpec, Position
from kestrel.settings import RiskSettings, WatchlistItem


class RiskContext(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    item: WatchlistItem
    analysis: AnalysisResult
    market: MarketSpec
    settings: RiskSettings
    now_ms: int
    timeframe_ms: int
    open_orders_for_symbol: int
    open_positions: int
    position: Position | None
    quote_free: Decimal
    base_free: Decimal
    quote_to_usd: Decimal | None
    emergency_stop: bool = False
