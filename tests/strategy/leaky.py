"""Strategies used by the tests: a deliberately leaky one and a small honest one."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kestrel.models import Action, Signal
from kestrel.strategy.plugin import Row, Strategy


class PeekParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=0.0, ge=-1, le=1)
    side: Literal["long", "both"] = "long"
    enabled: bool = True


class PeekStrategy(Strategy):
    """Buys when the NEXT candle closes higher: shift(-1) sees the future."""

    name = "peek"
    version = "0.0.1"
    timeframe = "1h"
    Params = PeekParams

    @property
    def warmup(self) -> int:
        return 2

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        close = candles["close"]
        return pd.DataFrame(
            {"close": close, "next_return": close.shift(-1) / close - 1}, index=candles.index
        )

    def entry(self, prev: Row, last: Row) -> Signal | None:
        if last["next_return"] > 0:
            return Signal(action=Action.BUY, confidence=0.9, reasoning="tomorrow is up",
                          analyst=self.name)  # fmt: skip
        return None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        if last["next_return"] < 0:
            return Signal(action=Action.SELL, confidence=0.9, reasoning="tomorrow is down",
                          analyst=self.name)  # fmt: skip
        return None


class Momentum(Strategy):
    """Honest: buys after two rising closes, sells after two falling ones."""

    name = "momentum"
    version = "1.2.0"
    timeframe = "5m"

    @property
    def warmup(self) -> int:
        return 3

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        close = candles["close"]
        return pd.DataFrame({"close": close, "change": close.diff()}, index=candles.index)

    def entry(self, prev: Row, last: Row) -> Signal | None:
        if prev["change"] > 0 and last["change"] > 0:
            return Signal(action=Action.BUY, confidence=0.6, reasoning="up twice", analyst="m")
        return None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        if prev["change"] < 0 and last["change"] < 0:
            return Signal(action=Action.SELL, confidence=0.6, reasoning="down twice", analyst="m")
        return None


class Unbounded(BaseModel):
    length: int = 14


class NotAStrategy:
    pass
