"""A trading configuration as a Prefect block: mode, exchange, one watchlist, risk and paper
settings. One block per watchlist; a trading-cycle deployment names its block.

Without blocks the same settings come from KESTREL_* variables, kestrel.toml, or the
deployment's `watchlist` / `config` parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from kestrel.config.settings import PaperSettings, RiskSettings, WatchlistItem
from kestrel.mode import TradingMode


class TradingConfig(Block):
    """Mode, exchange, watchlist, risk and paper settings for a trading-cycle deployment."""

    _block_type_name: ClassVar[str] = "Kestrel Trading Config"
    _block_type_slug: ClassVar[str] = "kestrel-trading-config"
    _description: ClassVar[str] = (
        "A Kestrel watchlist with its mode, exchange, risk and paper-trading settings."
    )

    mode: TradingMode = Field(default=TradingMode.DEMO, description="DEMO (paper) or REAL")
    exchange: str = Field(default="binance", description="ccxt exchange id")
    watchlist: list[WatchlistItem] = Field(
        default_factory=list, description="empty: keep the environment's watchlist"
    )
    risk: RiskSettings | None = Field(default=None, description="empty: environment's")
    paper: PaperSettings | None = Field(default=None, description="empty: environment's")

    @field_validator("watchlist")
    @classmethod
    def _unique(cls, items: list[WatchlistItem]) -> list[WatchlistItem]:
        symbols = [item.symbol for item in items]
        if len(symbols) != len(set(symbols)):
            raise ValueError("each symbol may appear once")
        return items

    def settings_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {"mode": self.mode.value, "exchange": self.exchange}
        if self.watchlist:
            overrides["watchlist"] = [item.model_dump(mode="json") for item in self.watchlist]
        if self.risk is not None:
            overrides["risk"] = self.risk.model_dump(mode="json")
        if self.paper is not None:
            overrides["paper"] = self.paper.model_dump(mode="json", exclude_none=True)
        return overrides
