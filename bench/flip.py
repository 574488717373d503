"""A bench-only strategy plugin: it signals on EVERY candle close, BUY on even hours and SELL
on odd ones, so a bench that advances the emulator one candle at a time sends an order for
every symbol on every close (an entry, then its exit, then an entry, ...).

Loaded through the normal settings (`trading.default_strategy = "bench.flip:FlipStrategy"`),
so the cycle under measurement is the production one: fetch, analyze, risk, decide, execute.
Never trade with it: it is a metronome, not a strategy.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from kestrel.models import Action, Signal
from kestrel.strategy.plugin import Row, Strategy
from kestrel.strategy.profiles import Distance, StrategyProfile

HOUR_MS = 3_600_000


class FlipStrategy(Strategy):
    """Enter on an even hour's candle, leave on an odd hour's: one order per candle."""

    name = "bench-flip"
    version = "0.1.0"
    timeframe = "1h"
    description = "bench metronome: BUY on even hours, SELL on odd hours"

    @property
    def warmup(self) -> int:
        return 2

    def profile(self) -> StrategyProfile:
        """Percent levels (no ATR to compute), wide enough that the bench's own prices, not
        the levels, decide the exits."""
        percent = Distance(kind="percent", value=Decimal("10"))
        return super().profile().model_copy(update={"stop_loss": percent, "take_profit": percent})

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        """The candle's hour parity (causal: each row reads its own timestamp only)."""
        odd = (candles["timestamp"].astype("int64") // HOUR_MS) % 2
        return pd.DataFrame({"odd_hour": odd.astype(float)}, index=candles.index)

    def entry(self, prev: Row, last: Row) -> Signal | None:
        if last["odd_hour"] == 0.0:
            return Signal(
                action=Action.BUY, confidence=1.0, reasoning="even hour", analyst=self.name
            )
        return None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        if last["odd_hour"] == 1.0:
            return Signal(
                action=Action.SELL, confidence=1.0, reasoning="odd hour", analyst=self.name
            )
        return None
