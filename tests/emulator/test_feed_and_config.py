"""Candle feeds, the clock and configuration, below the HTTP layer."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from emulator import MarketConfig
from emulator.candles import CandleFeed
from emulator.signing import sign, split_signature
from tests.emulator.scripted import HOUR, ROWS, T0


def test_feed_clock_lookups() -> None:
    feed = CandleFeed.from_rows(ROWS)
    assert feed.timeframe_ms == HOUR
    assert feed.current(T0 + HOUR - 1) is None  # candle 0 still open
    current = feed.current(T0 + HOUR)
    assert current is not None and current.close == Decimal("100")
    assert [c.open_time for c in feed.closing_between(T0 + HOUR, T0 + 3 * HOUR)] == [
        T0 + HOUR,
        T0 + 2 * HOUR,
    ]
    assert feed.next_close_after(T0 + HOUR) == T0 + 2 * HOUR
    assert feed.next_close_after(T0 + 8 * HOUR) is None


def test_feed_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="inconsistent candle"):
        CandleFeed.from_rows([[T0, 100, 99, 98, 100, 1], [T0 + HOUR, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="must increase"):
        CandleFeed.from_rows([ROWS[1], ROWS[0]], timeframe="1h")
    with pytest.raises(ValueError, match="not a Binance interval"):
        CandleFeed.from_rows([[0, 1, 1, 1, 1, 1], [7000, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="pass timeframe="):
        CandleFeed.from_rows([ROWS[0]])


def test_csv_header_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,o,h,l,c,v\n1,1,1,1,1,1\n")
    with pytest.raises(ValueError, match="header must be"):
        CandleFeed.from_csv(bad)


def test_shared_csv_with_gaps_infers_its_timeframe(shared_data_dir: Path) -> None:
    feed = CandleFeed.from_csv(shared_data_dir / "ohlcv" / "DASH_BTC-1m.csv")
    assert feed.timeframe_ms == 60_000
    assert len(feed.candles) == 12444
    assert feed.candles[0].close_time == feed.candles[0].open_time + 60_000


def test_market_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="BASE/QUOTE"):
        MarketConfig(symbol="btcusdt", candles=ROWS)
    with pytest.raises(ValidationError, match="not found"):
        MarketConfig(symbol="BTC/USDT", candles=tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match="greater than 0"):
        MarketConfig(symbol="BTC/USDT", candles=ROWS, step_size=Decimal("0"))


def test_signature_is_checked_over_the_raw_string() -> None:
    query = "symbol=BTCUSDT&timestamp=1"
    signed = f"{query}&signature={sign(query, 's')}"
    assert split_signature(signed) == (query, sign(query, "s"))
    assert split_signature("") == ("", None)
