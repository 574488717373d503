from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kestrel.errors import ConfigError, InvalidMarketData
from kestrel.market import CLOCK_STATE_KEY, MarketFeed, ReplayFeed
from kestrel.market.csvfile import read_candle_csv
from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore
from tests.market.conftest import HOUR, T0, ramp, write_csv


@pytest.fixture
def btc_file(shared_data_dir: Path) -> Path:
    return shared_data_dir / "ohlcv" / "BTC_USDT-1h.csv"


def test_replays_the_real_btc_file_candle_by_candle(store: SQLiteStore, btc_file: Path) -> None:
    rows = read_candle_csv(btc_file)
    feed = ReplayFeed({"BTC/USDT": btc_file}, store, warmup=200)
    assert isinstance(feed, MarketFeed)
    assert feed.label == "replay:BTC_USDT-1h.csv"
    assert feed.kind == "replay"

    series = feed.candles("BTC/USDT", "1h", 50)
    assert series.source == "replay:BTC_USDT-1h.csv"
    assert series.candles == rows[150:200]
    assert feed.now_ms("BTC/USDT") == rows[199].timestamp + HOUR  # close of the last visible

    feed.advance()
    assert feed.candles("BTC/USDT", "1h", 1).candles == [rows[200]]
    assert feed.candles("BTC/USDT", "1h", None).candles == rows[:201]
    feed.advance(10)
    assert feed.now_ms("BTC/USDT") == rows[210].timestamp + HOUR
    assert feed.remaining("BTC/USDT") == len(rows) - 211

    # the matching window never shows a candle that has not closed
    between = feed.candles_between("BTC/USDT", rows[205].timestamp, rows[300].timestamp)
    assert between == rows[205:211]


def test_exhausts_at_the_end_and_stays_there(store: SQLiteStore, btc_file: Path) -> None:
    rows = read_candle_csv(btc_file)
    feed = ReplayFeed({"BTC/USDT": btc_file}, store, warmup=200)
    feed.advance(len(rows) - 201)
    assert not feed.exhausted
    feed.advance()
    assert feed.exhausted
    feed.advance(5)  # no further than the data
    assert feed.candles("BTC/USDT", "1h", 1).candles == [rows[-1]]
    feed.reset()
    assert not feed.exhausted
    assert feed.candles("BTC/USDT", "1h", 1).candles == [rows[199]]


def test_aggregates_to_coarser_timeframes_closed_buckets_only(store: SQLiteStore) -> None:
    # 4h buckets are epoch aligned; T0 is 22:00 UTC, so the data starts mid-bucket.
    path = write_csv(store.path.parent / "BTC_USDT-1h.csv", ramp(20))
    feed = ReplayFeed({"BTC/USDT": path}, store, warmup=11)  # visible: 22:00 .. 08:00
    four_hour = feed.candles("BTC/USDT", "4h", None).candles
    # partial 20:00 bucket dropped; 00:00 and 04:00 closed; 08:00 still forming
    assert [c.timestamp for c in four_hour] == [T0 + 2 * HOUR, T0 + 6 * HOUR]
    first = four_hour[0]
    assert (first.open, first.close) == (102.0, 106.0)
    assert (first.high, first.low, first.volume) == (107.0, 101.0, 12 + 13 + 14 + 15)
    with pytest.raises(InvalidMarketData, match="cannot build"):
        feed.candles("BTC/USDT", "1m", 5)


def test_cursor_is_shared_through_the_store(store: SQLiteStore, btc_file: Path) -> None:
    first = ReplayFeed({"BTC/USDT": btc_file}, store, warmup=200)
    first.advance(3)
    other_connection = SQLiteStore(store.path, TradingMode.DEMO)
    try:
        second = ReplayFeed({"BTC/USDT": btc_file}, other_connection, warmup=200)
        assert second.now_ms("BTC/USDT") == first.now_ms("BTC/USDT")
        second.advance()
        assert first.now_ms("BTC/USDT") == second.now_ms("BTC/USDT")
    finally:
        other_connection.close()
    doc, _ = store.get_state(CLOCK_STATE_KEY) or ({}, 0)
    assert doc["replay"]["BTC/USDT"] == {"source": "BTC_USDT-1h.csv", "visible": 204}


def test_cursor_persists_across_processes(store: SQLiteStore, btc_file: Path) -> None:
    feed = ReplayFeed({"BTC/USDT": btc_file}, store, warmup=200)
    script = (
        "import sys; from pathlib import Path\n"
        "from kestrel.market import ReplayFeed\n"
        "from kestrel.mode import TradingMode\n"
        "from kestrel.store.sqlite import SQLiteStore\n"
        "store = SQLiteStore(Path(sys.argv[1]), TradingMode.DEMO)\n"
        "feed = ReplayFeed({'BTC/USDT': Path(sys.argv[2])}, store, warmup=200)\n"
        "feed.advance(7)\n"
        "print(feed.now_ms('BTC/USDT'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(store.path), str(btc_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout.strip()) == feed.now_ms("BTC/USDT")
    assert feed.now_ms("BTC/USDT") == read_candle_csv(btc_file)[206].timestamp + HOUR


def test_other_data_for_a_symbol_restarts_its_cursor(store: SQLiteStore, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = write_csv(tmp_path / "a" / "BTC_USDT-1h.csv", ramp(10))
    two = write_csv(tmp_path / "b" / "BTC_USDT-1h.csv", ramp(10))
    ReplayFeed({"BTC/USDT": one}, store, warmup=3).advance(4)
    assert ReplayFeed({"BTC/USDT": one}, store, warmup=3).now_ms("BTC/USDT") == T0 + 7 * HOUR
    # same file name in another folder is the same source; a different name restarts
    renamed = write_csv(tmp_path / "b" / "BTC_USDT-4h.csv", ramp(10, step=4 * HOUR))
    feed = ReplayFeed({"BTC/USDT": renamed}, store, warmup=3)
    assert feed.now_ms("BTC/USDT") == T0 + 3 * 4 * HOUR
    assert ReplayFeed({"BTC/USDT": two}, store, warmup=3).now_ms("BTC/USDT") == T0 + 7 * HOUR


def test_per_symbol_cursors_and_exhaustion(store: SQLiteStore, tmp_path: Path) -> None:
    short = write_csv(tmp_path / "ETH_USDT-1h.csv", ramp(5, price=2000))
    long = write_csv(tmp_path / "BTC_USDT-5m.csv", ramp(8, step=300_000))
    feed = ReplayFeed.from_dir(tmp_path, store, ["BTC/USDT", "ETH/USDT"], warmup=2)
    assert feed.now_ms("ETH/USDT") == T0 + 2 * HOUR
    assert feed.now_ms("BTC/USDT") == T0 + 2 * 300_000
    feed.advance(3)
    assert feed.remaining("ETH/USDT") == 0 and feed.remaining("BTC/USDT") == 3
    assert not feed.exhausted  # BTC still has candles
    feed.advance(3)
    assert feed.exhausted
    assert long.exists() and short.exists()


def test_bad_replay_inputs_fail_clearly(store: SQLiteStore, tmp_path: Path) -> None:
    rows = ramp(5)
    rows[3][1] = "nan"
    bad = write_csv(tmp_path / "BTC_USDT-1h.csv", rows)
    with pytest.raises(InvalidMarketData, match=r"BTC_USDT-1h\.csv:5:.*finite"):
        ReplayFeed({"BTC/USDT": bad}, store, warmup=2)
    short = write_csv(tmp_path / "ETH_USDT-1h.csv", ramp(3))
    with pytest.raises(InvalidMarketData, match="warm-up"):
        ReplayFeed({"ETH/USDT": short}, store, warmup=3)
    with pytest.raises(ConfigError, match="SOL/USDT"):
        ReplayFeed.from_dir(tmp_path, store, ["SOL/USDT"])
    feed = ReplayFeed({"ETH/USDT": short}, store, warmup=2)
    with pytest.raises(InvalidMarketData, match="no data for BTC/USDT"):
        feed.candles("BTC/USDT", "1h", 5)
