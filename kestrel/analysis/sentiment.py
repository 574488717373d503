"""A sentiment analyst: the market-wide Fear & Greed index (0 = extreme fear, 100 = extreme
greed), read contrarian - extreme fear leans BUY, extreme greed leans SELL, the middle HOLDs.

Same interface and same failure rule as every analyst: an unreachable, slow or malformed
source abstains. The index changes about daily, so answers are cached per URL for
`cache_s` (failures are not cached). With `recordings`, each answer is recorded under the
UTC day of the candle judged (the index is daily), so a backtest replays the index of that day.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from kestrel.analysis.base import AnalystInput
from kestrel.analysis.http import bounded_request
from kestrel.analysis.recordings import Recordings, record, recording_key
from kestrel.errors import AnalystAbstained
from kestrel.models import Action, Signal, timeframe_ms
from kestrel.strategy.settings import SentimentSettings

_cache: dict[str, tuple[float, float, str]] = {}  # url -> (fetched at, value, label)
_cache_lock = threading.Lock()


def parse_index(body: bytes) -> tuple[float, str]:
    try:
        entry = json.loads(body)["data"][0]
        value = float(entry["value"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise AnalystAbstained("malformed", f"not a sentiment index: {body[:120]!r}") from None
    if not 0 <= value <= 100:
        raise AnalystAbstained("malformed", f"index {value} outside 0..100")
    label = entry.get("value_classification") if isinstance(entry, dict) else None
    return value, str(label or "")


def sentiment_signal(value: float, label: str, settings: SentimentSettings, name: str) -> Signal:
    fear, greed = settings.extreme_fear, settings.extreme_greed
    text = f"Fear & Greed {value:g}{f' ({label})' if label else ''}"
    if value <= fear:
        confidence = 0.5 + 0.5 * ((fear - value) / fear if fear else 1.0)
        return Signal(
            action=Action.BUY,
            confidence=round(confidence, 4),
            reasoning=f"{text} <= {fear:g}: fear, contrarian BUY",
            analyst=name,
        )
    if value >= greed:
        confidence = 0.5 + 0.5 * ((value - greed) / (100 - greed) if greed < 100 else 1.0)
        return Signal(
            action=Action.SELL,
            confidence=round(confidence, 4),
            reasoning=f"{text} >= {greed:g}: greed, contrarian SELL",
            analyst=name,
        )
    return Signal(action=Action.HOLD, confidence=0.5, reasoning=f"{text}: no extreme", analyst=name)


def judged_day(data: AnalystInput) -> str:
    """The UTC day (YYYY-MM-DD) at the close of the last candle: when a live run asks."""
    last = data.series.last
    if last is None:
        return "unknown"
    closed = last.timestamp + timeframe_ms(data.timeframe)
    return datetime.fromtimestamp(closed / 1000, UTC).strftime("%Y-%m-%d")


def index_key(name: str, settings: SentimentSettings, data: AnalystInput) -> str:
    """The recording key: the analyst, the index's URL and the day judged."""
    return recording_key(name, settings.url, {"url": settings.url, "day": judged_day(data)})


class SentimentAnalyst:
    def __init__(
        self,
        settings: SentimentSettings,
        name: str = "sentiment",
        recordings: Recordings | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.recordings = recordings

    def read_index(self) -> tuple[float, str]:
        url = self.settings.url
        now = time.monotonic()
        with _cache_lock:
            cached = _cache.get(url)
        if cached is not None and now - cached[0] < self.settings.cache_s:
            return cached[1], cached[2]
        answer = bounded_request("GET", url, timeout_s=self.settings.timeout_s)
        if answer.status != 200:
            raise AnalystAbstained("http_error", f"HTTP {answer.status} from the sentiment index")
        value, label = parse_index(answer.body)
        with _cache_lock:
            _cache[url] = (time.monotonic(), value, label)
        return value, label

    def judge(self, data: AnalystInput) -> Signal:
        value, label = self.read_index()
        record(
            self.recordings,
            index_key(self.name, self.settings, data),
            {
                "analyst": self.name,
                "kind": "sentiment",
                "day": judged_day(data),
                "value": value,
                "label": label,
            },
        )
        return sentiment_signal(value, label, self.settings, self.name)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
