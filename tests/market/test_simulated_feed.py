from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kestrel.market import MarketFeed, SimulatedFeed
from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000


def test_same_seed_same_candles_in_another_store(store: SQLiteStore, tmp_path: Path) -> None:
    other = SQLiteStore(tmp_path / "other.sqlite", TradingMode.DEMO)
    try:
        a = SimulatedFeed(store, ["BTC/USDT", "ETH/USDT"], seed=7)
        b = SimulatedFeed(other, ["ETH/USDT", "BTC/USDT"], seed=7)
        for feed in (a, b):
            feed.advance(25)
        for symbol in ("BTC/USDT", "ETH/USDT"):
            assert a.candles(symbol, "1h", None).candles == b.candles(symbol, "1h", None).candles
            assert a.now_ms(symbol) == b.now_ms(symbol)
        different = SimulatedFeed(other, ["BTC/USDT"], seed=8)
        assert (
            different.candles("BTC/USDT", "1h", 50).candles
            != a.candles("BTC/USDT", "1h", 50).candles
        )
    finally:
        other.close()


def test_label_kind_and_protocol(store: SQLiteStore) -> None:
    feed = SimulatedFeed(store, ["BTC/USDT"], seed=7)
    assert isinstance(feed, MarketFeed)
    assert feed.label == "SIMULATED (seed 7)"
    assert feed.kind == "simulated"
    assert feed.candles("BTC/USDT", "1h", 5).source == "SIMULATED (seed 7)"


def test_cursor_reveals_one_candle_per_step(store: SQLiteStore) -> None:
    feed = SimulatedFeed(store, ["BTC/USDT"], seed=7, warmup=100, length=103)
    before = feed.candles("BTC/USDT", "1h", None).candles
    assert len(before) == 100
    now = feed.now_ms("BTC/USDT")
    assert now == before[-1].timestamp + HOUR
    feed.advance()
    after = feed.candles("BTC/USDT", "1h", None).candles
    assert after[:-1] == before and after[-1].timestamp == now
    assert feed.candles_between("BTC/USDT", now, now + 10 * HOUR) == [after[-1]]
    feed.advance(5)
    assert feed.exhausted and feed.remaining("BTC/USDT") == 0


def test_the_market_moves_enough_to_trade(store: SQLiteStore) -> None:
    """Regimes must produce real trends and drawdowns, not a flat line."""
    feed = SimulatedFeed(store, ["BTC/USDT"], seed=7, warmup=2000)
    closes = [c.close for c in feed.candles("BTC/USDT", "1h", None).candles]
    moves = [abs(b / a - 1) for a, b in itertools.pairwise(closes)]
    assert 0.001 < sum(moves) / len(moves) < 0.02  # hourly moves of a crypto market
    windows = [closes[i + 100] / closes[i] - 1 for i in range(0, len(closes) - 100, 50)]
    assert max(windows) > 0.05 and min(windows) < -0.05  # rallies and sell-offs
    assert all(
        c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)
        for c in feed.candles("BTC/USDT", "1h", None).candles
    )


def test_other_symbols_and_timeframes(store: SQLiteStore) -> None:
    feed = SimulatedFeed(store, ["ETH/BTC", "NEWCOIN/USDT"], seed=3, timeframe="15m", warmup=64)
    eth_btc = feed.candles("ETH/BTC", "15m", 1).candles[0].close
    assert 0.01 < eth_btc < 0.2  # priced in BTC
    hourly = feed.candles("NEWCOIN/USDT", "1h", None).candles
    assert len(hourly) == 16 and all(c.timestamp % HOUR == 0 for c in hourly)
    with pytest.raises(ValueError, match="length"):
        SimulatedFeed(store, ["BTC/USDT"], warmup=10, length=10)
