"""BacktestFeed: one clock for every symbol and timeframe, nothing visible before its close,
fills on the finest candles present."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.backtest.engine import build_schedule
from kestrel.backtest.feed import BacktestFeed
from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError, InvalidMarketData
from kestrel.models import timeframe_ms
from kestrel.strategy.resolve import resolve_plans
from tests.backtest.fixtures import START_MS, sine_candles, split_minutes, write_csv
from tests.backtest.helpers import spec

FIVE = timeframe_ms("5m")
HOUR = timeframe_ms("1h")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "synthetic"
    write_csv(data, "ETH/BTC", "5m", sine_candles(600, "5m"))
    write_csv(data, "XMR/BTC", "1h", sine_candles(60, "1h", price=0.02))
    return data


def test_nothing_is_visible_before_it_closes(folder: Path) -> None:
    feed = BacktestFeed.load(folder, {"ETH/BTC": "5m", "XMR/BTC": "1h"})
    for now in (
        START_MS + HOUR,
        START_MS + HOUR + 1,
        START_MS + 7 * HOUR - 1,
        START_MS + 20 * HOUR,
    ):
        feed.now = now
        for symbol, tf in (("ETH/BTC", "5m"), ("XMR/BTC", "1h")):
            series = feed.candles(symbol, tf, None)
            assert series.candles, (symbol, now)
            assert all(c.timestamp + timeframe_ms(tf) <= now for c in series.candles)
            # the next candle (if any) has not closed yet
            assert series.candles[-1].timestamp + 2 * timeframe_ms(tf) > now
            assert feed.now_ms(symbol) == now  # one clock for all symbols
        assert all(
            c.timestamp + FIVE <= now for c in feed.candles_between("ETH/BTC", 0, now + HOUR)
        )


def test_a_coarser_timeframe_is_aggregated_from_closed_candles_only(folder: Path) -> None:
    feed = BacktestFeed.load(folder, {"ETH/BTC": "15m"})
    feed.now = START_MS + 15 * 60_000 * 10 + 5 * 60_000  # 10 buckets closed, the 11th forming
    candles = feed.candles("ETH/BTC", "15m", None).candles
    assert len(candles) == 10
    source = sine_candles(600, "5m")
    assert candles[-1].close == source[29][4] and candles[-1].open == source[27][1]


def test_schedule_runs_each_symbol_at_its_own_closes(folder: Path) -> None:
    settings = load_settings(
        watchlist=[
            {"symbol": "ETH/BTC", "timeframe": "5m"},
            {"symbol": "XMR/BTC", "timeframe": "1h"},
        ]
    )
    plans = resolve_plans(settings)
    feed = BacktestFeed.load(folder, {p.symbol: p.item.timeframe for p in plans})
    schedule = build_schedule(feed, plans, spec(folder, warmup=20))
    times = [t for t, _ in schedule]
    assert times == sorted(set(times))
    for t, symbols in schedule:
        assert ("XMR/BTC" in symbols) == (t % HOUR == 0 and t >= START_MS + 20 * HOUR)
        assert ("ETH/BTC" in symbols) == (t >= START_MS + 20 * FIVE and t <= START_MS + 600 * FIVE)


def test_fills_use_the_finest_candles_present(tmp_path: Path) -> None:
    data = tmp_path / "synthetic"
    five = sine_candles(200, "5m")
    write_csv(data, "ETH/BTC", "5m", five)
    later = [r for r in five if r[0] >= START_MS + 100 * FIVE]  # 1m data starts later
    write_csv(data, "ETH/BTC", "1m", split_minutes(later, 5, 60_000))
    feed = BacktestFeed.load(data, {"ETH/BTC": "5m"})
    feed.now = START_MS + 200 * FIVE
    early = feed.candles_between("ETH/BTC", START_MS, START_MS + 10 * FIVE)
    fine = feed.candles_between("ETH/BTC", START_MS + 100 * FIVE, START_MS + 102 * FIVE)
    assert len(early) == 10 and len(fine) == 10
    assert feed.label == "replay:ETH_BTC-1m.csv,ETH_BTC-5m.csv"
    coarse_only = BacktestFeed.load(data, {"ETH/BTC": "5m"}, detail=False)
    coarse_only.now = feed.now
    assert (
        len(coarse_only.candles_between("ETH/BTC", START_MS + 100 * FIVE, START_MS + 102 * FIVE))
        == 2
    )


def test_bad_data_names_the_file_and_row(tmp_path: Path) -> None:
    data = tmp_path / "bad"
    rows = sine_candles(50, "5m")
    rows[7] = (rows[7][0], float("nan"), *rows[7][2:])
    path = write_csv(data, "ETH/BTC", "5m", rows)
    with pytest.raises(InvalidMarketData, match=rf"{path.name}:9"):
        BacktestFeed.load(data, {"ETH/BTC": "5m"})
    with pytest.raises(ConfigError, match=r"no candle file for XMR/BTC"):
        BacktestFeed.load(data, {"XMR/BTC": "5m"})
    write_csv(data, "DASH/BTC", "1h", sine_candles(50, "1h"))
    with pytest.raises(ConfigError, match=r"DASH/BTC: no file .* at 5m or a timeframe dividing it"):
        BacktestFeed.load(data, {"DASH/BTC": "5m"})
