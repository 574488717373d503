"""A plain strategy for the DEMO engine tests: buy when the last close is above the one
before it; never leaves by rule (the stop-loss does)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from kestrel.models import Action, Signal
from kestrel.strategy.plugin import Row, Strategy
from kestrel.strategy.profiles import Distance, StrategyProfile


class RisingClose(Strategy):
    name = "rising-close"
    version = "0.1.0"
    timeframe = "1h"

    @property
    def warmup(self) -> int:
        return 2

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        close = candles["close"]
        return pd.DataFrame({"close": close, "change": close.diff()}, index=candles.index)

    def entry(self, prev: Row, last: Row) -> Signal | None:
        if last["change"] > 0:
            return Signal(action=Action.BUY, confidence=0.9, reasoning="rose", analyst=self.name)
        return None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        return None

    def profile(self) -> StrategyProfile:
        """A 1% stop and a 5% target (the default ATR levels need an ATR column)."""
        pct = {"kind": "percent"}
        return (
            super()
            .profile()
            .model_copy(
                update={
                    "stop_loss": Distance.model_validate({**pct, "value": Decimal("1")}),
                    "take_profit": Distance.model_validate({**pct, "value": Decimal("5")}),
                }
            )
        )
