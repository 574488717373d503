"""Analysts that call out (LLM, sentiment) never reach a live service from a backtest.

Live runs record every answer these analysts get, keyed by a hash of what they sent
(kestrel.analysis.recordings). In a backtest they are replaced by replayers that build the
same request from the same candles, look its key up in the recordings the backtest is pointed
at (`BacktestSpec.recordings`, a JSON-lines export) and turn the recorded answer into a Signal
with the live analyst's own code. No HTTP client exists here, so nothing can be called.

A miss (no recordings given, or this input was never asked live) follows
`BacktestSpec.on_missing_answer`: "hold" abstains with kind "no_recording" (an abstention is
never a vote, so SOLO holds and a SWARM's technical analysts decide alone); "error" raises
MissingRecording naming the analyst, symbol and candle, which stops the backtest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from kestrel.analysis.base import AnalystInput
from kestrel.analysis.llm import build_request, request_key, verdict_signal
from kestrel.analysis.recordings import Recordings
from kestrel.analysis.sentiment import index_key, sentiment_signal
from kestrel.errors import AnalystAbstained, MissingRecording
from kestrel.models import Signal
from kestrel.strategy.settings import LLMSettings, SentimentSettings

OnMissing = Literal["hold", "error"]


def _candle(data: AnalystInput) -> str:
    last = data.series.last
    if last is None:
        return "no candle"
    return datetime.fromtimestamp(last.timestamp / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


class Replayer:
    """What the two replayers share: the lookup and the miss rule."""

    kind = "analyst"

    def __init__(self, name: str, recordings: Recordings | None, on_missing: OnMissing) -> None:
        self.name = name
        self.recordings = recordings
        self.on_missing = on_missing

    def answer(self, key: str, data: AnalystInput) -> dict[str, Any]:
        found = self.recordings.get(key) if self.recordings is not None else None
        if found is not None:
            return found
        where = (
            "no recordings given (BacktestSpec.recordings / --recordings)"
            if self.recordings is None
            else f"no recorded answer for key {key[:12]}"
        )
        message = (
            f"{self.kind} analyst {self.name}: {data.symbol} {data.timeframe} candle opened "
            f"{_candle(data)}: {where}; a backtest never calls a live service"
        )
        if self.on_missing == "error":
            raise MissingRecording(f"{message} (on_missing_answer=error)")
        raise AnalystAbstained("no_recording", f"{message} (HOLD)")


class ReplayedLLM(Replayer):
    """The LLM analyst's recorded answers to the same request (same prompt, same model)."""

    kind = "llm"

    def __init__(
        self,
        settings: LLMSettings,
        name: str,
        recordings: Recordings | None,
        on_missing: OnMissing = "hold",
    ) -> None:
        super().__init__(name, recordings, on_missing)
        self.settings = settings

    def judge(self, data: AnalystInput) -> Signal:
        if not data.enough_data:
            data.frame()  # the insufficient_data abstention, as live
        key = request_key(self.name, self.settings, build_request(self.settings, data))
        content = self.answer(key, data).get("content")
        if not isinstance(content, str):
            raise AnalystAbstained("malformed", f"recording {key[:12]} has no content")
        return verdict_signal(content, data, self.settings, self.name)


class ReplayedSentiment(Replayer):
    """The sentiment index as recorded live on the day of the candle judged."""

    kind = "sentiment"

    def __init__(
        self,
        settings: SentimentSettings,
        name: str,
        recordings: Recordings | None,
        on_missing: OnMissing = "hold",
    ) -> None:
        super().__init__(name, recordings, on_missing)
        self.settings = settings

    def judge(self, data: AnalystInput) -> Signal:
        key = index_key(self.name, self.settings, data)
        found = self.answer(key, data)
        try:
            value, label = float(found["value"]), str(found.get("label") or "")
        except (KeyError, TypeError, ValueError):
            raise AnalystAbstained("malformed", f"recording {key[:12]} has no value") from None
        return sentiment_signal(value, label, self.settings, self.name)
