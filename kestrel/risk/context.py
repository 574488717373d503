"""Everything a risk verdict depends on, gathered once (kestrel.risk.gather) so that the gates,
rules and sizing are pure functions of this one object - which is what the table-driven and
property-based tests drive directly."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from kestrel.config.settings import RiskSettings, WatchlistItem
from kestrel.mode import TradingMode
from kestrel.models import AnalysisResult, MarketSpec, Position
from kestrel.risk.controls import CircuitBreaker
from kestrel.strategy.profiles import BUILTIN_PROFILES, FALLBACK_PROFILE, StrategyProfile
from kestrel.strategy.settings import TradingSettings


class DailyPnl(BaseModel):
    """Today's PnL of the book (UTC day): realized (net of fees) plus the change in
    unrealized PnL since the start of the day, in USD, against start-of-day equity."""

    day: str
    # The *_usd amounts are in `currency`: USD, or the currency the account's equity is
    # known in when it has no USD value (kestrel.risk.daily).
    currency: str = "USD"
    start_equity_usd: Decimal | None
    realized_usd: Decimal = Decimal("0")
    unrealized_usd: Decimal = Decimal("0")

    @property
    def pnl_usd(self) -> Decimal:
        return self.realized_usd + self.unrealized_usd


class Exposure(BaseModel):
    """USD held: open positions marked to market plus live buy orders."""

    symbol_usd: Decimal = Decimal("0")
    total_usd: Decimal = Decimal("0")


class RiskContext(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    item: WatchlistItem
    analysis: AnalysisResult
    market: MarketSpec
    settings: RiskSettings
    trading: TradingSettings = Field(default_factory=TradingSettings)
    profile: StrategyProfile = BUILTIN_PROFILES[FALLBACK_PROFILE]
    mode: TradingMode = TradingMode.DEMO
    now_ms: int = Field(description="market time: the replay clock in DEMO replays")
    timeframe_ms: int
    open_orders_for_symbol: int
    pending_exit: bool = Field(default=False, description="a live sell of this symbol")
    open_positions: int = Field(description="open positions plus entries still pending")
    position: Position | None
    quote_free: Decimal
    base_free: Decimal
    protected_base: Decimal = Field(
        default=Decimal("0"),
        description="base held by this symbol's live protective orders: an exit cancels them "
        "first (kestrel.execution.orders), so it may sell these too; at most what the wallet holds",
    )
    quote_to_usd: Decimal | None
    stake_to_quote: Decimal | None = Field(
        default=None,
        description="quote per unit of the item's stake currency (item.stake()); None: no "
        "ticker path between them",
    )
    equity_quote: Decimal | None = Field(
        default=None,
        description="equity valued in the quote: measured only when the quote has no USD "
        "price, for the % caps",
    )
    exposure_quote: Exposure = Field(
        default_factory=Exposure, description="as `exposure`, in the quote (same condition)"
    )
    emergency_stop: bool = False
    emergency_stop_note: str = Field(default="", description="who set it and why")
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    last_fill_ms: dict[str, int] = Field(
        default_factory=dict, description="side ('buy'/'sell') -> market ms of the last fill"
    )
    daily: DailyPnl | None = Field(default=None, description="None: not measured")
    equity_usd: Decimal | None = Field(default=None, description="None: not measured")
    exposure: Exposure = Field(default_factory=Exposure)

    @property
    def base_for_exit(self) -> Decimal:
        return self.base_free + self.protected_base

    @property
    def min_confidence(self) -> float:
        if self.profile.min_confidence is not None:
            return self.profile.min_confidence
        return self.settings.min_confidence
