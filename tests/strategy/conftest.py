"""Strategy fixtures: a deterministic candle series long enough for every built-in."""

from __future__ import annotations

import random

import pytest

from kestrel.models import Candle, CandleSeries

HOUR = 3_600_000
T0 = 1_704_067_200_000


def random_walk(count: int = 500, seed: int = 7, timeframe: str = "1h") -> CandleSeries:
    """A seeded random walk with trends and noise, so crossovers happen both ways."""
    rng = random.Random(seed)
    price, candles = 100.0, []
    for i in range(count):
        drift = 0.4 * (1 if (i // 60) % 2 == 0 else -1)
        close = max(5.0, price + drift + rng.gauss(0, 1.2))
        high = max(price, close) + abs(rng.gauss(0, 0.5))
        low = min(price, close) - abs(rng.gauss(0, 0.5))
        candles.append(
            Candle(
                timestamp=T0 + i * HOUR,
                open=price,
                high=high,
                low=low,
                close=close,
                volume=10 + rng.random() * 20,
            )
        )
        price = close
    return CandleSeries(symbol="BTC/USDT", timeframe=timeframe, candles=candles, source="walk")


@pytest.fixture
def walk() -> CandleSeries:
    return random_walk()
