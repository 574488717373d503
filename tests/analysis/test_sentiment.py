"""The sentiment analyst (Fear & Greed index) over real HTTP against our local server."""

from __future__ import annotations

import pytest

from fakes.openai_server import FakeChatServer
from kestrel.analysis.base import consult
from kestrel.analysis.engine import prepare
from kestrel.analysis.sentiment import SentimentAnalyst, sentiment_signal
from kestrel.models import Action, CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.strategy.settings import SentimentSettings


@pytest.mark.parametrize(
    ("value", "action", "confidence"),
    [
        (0, Action.BUY, 1.0),
        (10, Action.BUY, 0.8),
        (25, Action.BUY, 0.5),  # at the fear threshold
        (25.01, Action.HOLD, 0.5),
        (50, Action.HOLD, 0.5),
        (74.99, Action.HOLD, 0.5),
        (75, Action.SELL, 0.5),  # at the greed threshold
        (90, Action.SELL, 0.8),
        (100, Action.SELL, 1.0),
    ],
)
def test_contrarian_mapping(value: float, action: Action, confidence: float) -> None:
    signal = sentiment_signal(value, "", SentimentSettings(), "sentiment")
    assert (signal.action, signal.confidence) == (action, pytest.approx(confidence, abs=1e-4))


def test_reads_the_index_over_http_and_caches_it(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    chat_server.set_sentiment(12, "Extreme Fear")
    analyst = SentimentAnalyst(SentimentSettings(url=chat_server.sentiment_url, cache_s=600))
    data = prepare(series)
    first, second = consult(analyst, data), consult(analyst, data)
    assert isinstance(first, Signal) and first.action is Action.BUY
    assert "Extreme Fear" in first.reasoning
    assert second == first
    assert len(chat_server.requests("/fng")) == 1


def test_failures_abstain_and_are_not_cached(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    chat_server.fail_sentiment(503)
    analyst = SentimentAnalyst(SentimentSettings(url=chat_server.sentiment_url, cache_s=600))
    data = prepare(series)
    failed = consult(analyst, data)
    assert isinstance(failed, Abstention) and failed.kind == "http_error"
    chat_server.set_sentiment(88, "Extreme Greed")
    recovered = consult(analyst, data)
    assert isinstance(recovered, Signal) and recovered.action is Action.SELL


def test_junk_index_abstains(chat_server: FakeChatServer, series: CandleSeries) -> None:
    url = chat_server.base_url + "/models"  # JSON, but not an index
    vote = consult(SentimentAnalyst(SentimentSettings(url=url)), prepare(series))
    assert isinstance(vote, Abstention) and vote.kind == "malformed"
