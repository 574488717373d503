"""Fixtures for the analysis tests: deterministic candles and the local chat-completions
server (fakes.openai_server) that the LLM and sentiment analysts talk to."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from fakes.openai_server import FakeChatServer
from kestrel.analysis.sentiment import clear_cache
from kestrel.models import Candle, CandleSeries

HOUR = 3_600_000


def wave_series(count: int = 120, symbol: str = "BTC/USDT", start: float = 100.0) -> CandleSeries:
    """A trending sine wave: crossovers in both directions, every indicator defined."""
    candles = []
    for i in range(count):
        close = start + 0.05 * i + 4 * math.sin(i / 6)
        open_ = close - 0.3 * math.cos(i / 6)
        candles.append(
            Candle(
                timestamp=i * HOUR,
                open=open_,
                high=max(open_, close) + 0.5,
                low=min(open_, close) - 0.5,
                close=close,
                volume=100 + 30 * math.sin(i / 3) ** 2,
            )
        )
    return CandleSeries(symbol=symbol, timeframe="1h", candles=candles, source="test:wave")


@pytest.fixture
def series() -> CandleSeries:
    return wave_series()


@pytest.fixture
def chat_server() -> Iterator[FakeChatServer]:
    with FakeChatServer(api_key="sk-test-secret-123", max_hang_s=20) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sentiment_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()
