from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.errors import InvalidMarketData
from kestrel.market import find_replay_files, parse_candle_filename, read_candle_csv
from tests.market.conftest import T0, ramp, write_csv


def test_reads_valid_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", ramp(3))
    candles = read_candle_csv(path)
    assert [c.timestamp for c in candles] == [T0, T0 + 3_600_000, T0 + 7_200_000]
    assert candles[0].open == 100.0 and candles[0].close == 101.0


@pytest.mark.parametrize(
    ("bad_row", "needle"),
    [
        ([T0 + 3_600_000, "NaN", 102, 99, 101, 1], "finite"),
        ([T0 + 3_600_000, 100, 99, 98, 101, 1], "inconsistent"),  # high below close
        ([T0 + 3_600_000, 100, 102, 99, 101, -1], "volume"),
        ([T0 + 3_600_000, 100, 102, 99, "abc", 1], "not a number"),
        ([T0 + 3_600_000, 100, 102, 99, 101], "expected 6 values"),
        ([T0, 100, 102, 99, 101, 1], "does not increase"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path: Path, bad_row: list[object], needle: str) -> None:
    rows = [*ramp(1), bad_row, *ramp(2, start=T0 + 7_200_000)]
    path = write_csv(tmp_path / "BTC_USDT-1h.csv", rows)
    with pytest.raises(InvalidMarketData) as caught:
        read_candle_csv(path)
    message = str(caught.value)
    assert f"{path}:3:" in message  # header is line 1, the bad row line 3
    assert needle in message


def test_wrong_header_and_empty_file(tmp_path: Path) -> None:
    wrong = tmp_path / "BTC_USDT-1h.csv"
    wrong.write_text("time,o,h,l,c,v\n1,1,1,1,1,1\n")
    with pytest.raises(InvalidMarketData, match="header"):
        read_candle_csv(wrong)
    empty = write_csv(tmp_path / "ETH_USDT-1h.csv", [])
    with pytest.raises(InvalidMarketData, match="no candle rows"):
        read_candle_csv(empty)


def test_filename_parsing() -> None:
    assert parse_candle_filename(Path("BTC_USDT-1h.csv")) == ("BTC/USDT", "1h")
    assert parse_candle_filename(Path("ETH_BTC-30m.csv")) == ("ETH/BTC", "30m")
    assert parse_candle_filename(Path("XRP_USDT_USDT-1h-futures.csv")) is None
    assert parse_candle_filename(Path("BTC_USDT-7m.csv")) is None  # not a timeframe
    assert parse_candle_filename(Path("notes.txt")) is None


def test_finder_prefers_exact_then_coarsest_dividing_timeframe(tmp_path: Path) -> None:
    for name in ("ETH_BTC-1m.csv", "ETH_BTC-5m.csv", "ETH_BTC-30m.csv", "BTC_USDT-1h.csv"):
        write_csv(tmp_path / name, ramp(2))
    (tmp_path / "README.md").write_text("not candles")
    found = find_replay_files(tmp_path, timeframe="1h")
    assert found["ETH/BTC"] == tmp_path / "ETH_BTC-30m.csv"
    assert found["BTC/USDT"] == tmp_path / "BTC_USDT-1h.csv"
    assert find_replay_files(tmp_path, timeframe="5m")["ETH/BTC"] == tmp_path / "ETH_BTC-5m.csv"
    assert find_replay_files(tmp_path, ["BTC/USDT"]) == {"BTC/USDT": tmp_path / "BTC_USDT-1h.csv"}
    assert find_replay_files(tmp_path / "missing") == {}


def test_real_shared_files_parse(shared_data_dir: Path) -> None:
    ohlcv = shared_data_dir / "ohlcv"
    found = find_replay_files(ohlcv, timeframe="1h")
    assert found["BTC/USDT"].name == "BTC_USDT-1h.csv"
    candles = read_candle_csv(found["BTC/USDT"])
    assert len(candles) == 585
    assert candles[0].timestamp == 1_569_844_800_000  # 2019-09-30T12:00:00Z
