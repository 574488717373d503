"""Analysts that call out (LLM, sentiment) never reach a live service from a backtest.

Live runs do not record their answers yet, so there is nothing to replay: such an analyst
abstains with kind "no_recording" and a reason saying so. An abstention is never a vote
(kestrel.analysis.base), so in SOLO mode the decision is HOLD with that reason on record, and
in a SWARM the technical analysts decide alone. The guard is structural: the engine builds
these in place of LLMAnalyst / SentimentAnalyst, so no HTTP client exists to call.
"""

from __future__ import annotations

from kestrel.analysis.base import AnalystInput
from kestrel.errors import AnalystAbstained
from kestrel.models import Signal


class RecordedOnly:
    """Stands in for an analyst that would call a live service."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind

    def judge(self, data: AnalystInput) -> Signal:
        raise AnalystAbstained(
            "no_recording",
            f"{self.kind} analyst {self.name}: no recorded answer for {data.symbol} "
            f"{data.timeframe}; a backtest never calls a live service (HOLD)",
        )
