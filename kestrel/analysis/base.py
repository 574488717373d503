"""The analyst interface: data in, a Signal (action, confidence 0..1, reasoning, optional
entry / stop-loss / take-profit) or an Abstention out.

An analyst that cannot answer (its endpoint timed out, answered garbage, the data is too
short) raises AnalystAbstained; `consult` turns that, and any other exception, into an
Abstention. An abstention is recorded on the AnalysisResult and is never a vote, so it can
never produce a trade.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from kestrel.errors import AnalystAbstained, MissingRecording
from kestrel.models import CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.strategy.profiles import StrategyProfile

if TYPE_CHECKING:
    import pandas as pd

Vote = Signal | Abstention


class AnalystInput(BaseModel):
    """What every analyst sees: the candles, the profile, and the indicators computed once."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    series: CandleSeries
    profile: StrategyProfile
    indicators: Any = None  # pd.DataFrame, or None when there are too few candles
    values: dict[str, float | None] = {}
    price: Decimal
    warmup: int

    @property
    def symbol(self) -> str:
        return self.series.symbol

    @property
    def timeframe(self) -> str:
        return self.series.timeframe

    @property
    def enough_data(self) -> bool:
        return self.indicators is not None

    def frame(self) -> pd.DataFrame:
        if self.indicators is None:
            raise AnalystAbstained(
                "insufficient_data",
                f"only {len(self.series.candles)} candles, need {self.warmup}",
            )
        frame: pd.DataFrame = self.indicators
        return frame


@runtime_checkable
class Analyst(Protocol):
    name: str

    def judge(self, data: AnalystInput) -> Signal:
        """A verdict, or raise AnalystAbstained."""
        ...


def consult(analyst: Analyst, data: AnalystInput) -> Vote:
    """Ask one analyst; whatever goes wrong becomes an Abstention (never a trade), except a
    backtest's MissingRecording, which the user asked to stop the backtest."""
    try:
        signal = analyst.judge(data)
    except MissingRecording:
        raise
    except AnalystAbstained as exc:
        return Abstention(analyst=analyst.name, kind=exc.kind, detail=exc.detail[:500])
    except Exception as exc:  # an analyst bug must not become a trade, nor stop the others
        return Abstention(analyst=analyst.name, kind="error", detail=f"{type(exc).__name__}: {exc}")
    if signal.analyst != analyst.name:
        signal = signal.model_copy(update={"analyst": analyst.name})
    return signal
