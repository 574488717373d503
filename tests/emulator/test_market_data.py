"""Public market data through the real ccxt client: markets, klines, tickers, the clock."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from emulator import BinanceEmulator, MarketConfig
from tests.emulator.scripted import HOUR, ROWS, T0, MakeEmulator, scripted_market


def test_load_markets_parses_precision_and_limits(ex: ccxt.binance) -> None:
    market = ex.market("BTC/USDT")
    assert market["id"] == "BTCUSDT"
    assert market["spot"] is True and market["active"] is True
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.001
    assert market["limits"]["amount"]["min"] == 0.001
    assert market["limits"]["price"]["min"] == 0.01
    assert market["limits"]["cost"]["min"] == 5.0
    assert ex.amount_to_precision("BTC/USDT", 0.12345) == "0.123"


def test_ping_and_time(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    assert ex.public_get_ping() == {}
    before = emu.server_time_ms()
    assert ex.fetch_time() >= before > emu.now_ms  # /time is the wall clock, not candle time


def test_load_markets_calls_only_exchange_info(emu: BinanceEmulator) -> None:
    client = emu.ccxt_client(timeout_ms=2000)
    client.load_markets()
    assert emu.request_counts() == {"GET /api/v3/exchangeInfo": 1}


def test_klines_reveal_only_closed_candles(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    assert ex.fetch_ohlcv("BTC/USDT", "1h") == [[float(x) for x in ROWS[0]]]
    assert emu.advance(2) == 2
    assert emu.now_ms == T0 + 3 * HOUR
    assert ex.fetch_ohlcv("BTC/USDT", "1h") == [[float(x) for x in r] for r in ROWS[:3]]


def test_klines_since_limit_and_coarser_interval(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    assert emu.advance(100) == len(ROWS) - 1  # stops at the end of the feed
    since = ex.fetch_ohlcv("BTC/USDT", "1h", since=T0 + 2 * HOUR, limit=3)
    assert [r[0] for r in since] == [T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR]
    assert ex.fetch_ohlcv("BTC/USDT", "1h", limit=2) == [[float(x) for x in r] for r in ROWS[-2:]]
    # 4h buckets align to UTC midnight: 20:00 holds candles 0-1, 00:00 holds 2-5, 04:00 holds
    # 6-7 and is still forming (as Binance serves its current kline).
    four_h = ex.fetch_ohlcv("BTC/USDT", "4h")
    assert four_h == [
        [T0 - 2 * HOUR, 100, 102, 98, 101, 20],
        [T0 + 2 * HOUR, 101, 110, 90, 108, 34],
        [T0 + 6 * HOUR, 108, 109, 106, 107, 10],
    ]


def test_klines_finer_than_the_feed_are_refused(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1120"):
        ex.fetch_ohlcv("BTC/USDT", "1m")


def test_ticker_follows_the_clock(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    ticker = ex.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["bid"], ticker["ask"]) == (100.0, 100.0, 100.0)
    emu.advance(4)
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["last"] == 108.0
    assert (ticker["open"], ticker["high"], ticker["low"]) == (100.0, 110.0, 90.0)
    assert ticker["baseVolume"] == 44.0
    assert ex.fetch_ticker("BTC/USDT")["timestamp"] == emu.now_ms - 1


def test_unknown_symbol_is_bad_symbol(emu: BinanceEmulator) -> None:
    client = emu.ccxt_client(timeout_ms=2000)
    client.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        client.public_get_ticker_price({"symbol": "DOGEUSDT"})


def test_two_markets_share_one_clock(make_emulator: MakeEmulator) -> None:
    eth_rows: list[list[float | int | str]] = [
        [T0 + i * 2 * HOUR, 10 + i, 11 + i, 9 + i, 10 + i, 5] for i in range(4)
    ]
    eth = MarketConfig(symbol="ETH/USDT", candles=eth_rows)
    emu = make_emulator(markets=[scripted_market(), eth])
    # Start: BTC candle 0 closed at T0+1h; ETH's first 2h candle is not closed yet.
    assert emu.price("BTC/USDT") == Decimal("100")
    with pytest.raises(Exception, match="Market is closed"):
        emu.price("ETH/USDT")
    emu.advance()  # T0+2h: BTC candle 1 and ETH candle 0 close together
    assert (emu.price("BTC/USDT"), emu.price("ETH/USDT")) == (Decimal("101"), Decimal("10"))
    emu.advance()  # T0+3h: only BTC moves
    assert (emu.price("BTC/USDT"), emu.price("ETH/USDT")) == (Decimal("96"), Decimal("10"))


def test_shared_btc_csv_is_served_verbatim(btc_csv: Path) -> None:
    # Binance prints amounts with 8 decimals; the CSV keeps float-sum artefacts of volumes.
    with btc_csv.open() as fh:
        rows = [[round(float(x), 8) for x in r] for r in list(csv.reader(fh))[1:]]
    with BinanceEmulator({"BTC/USDT": btc_csv}, start_index=100) as emu:
        client = emu.ccxt_client(timeout_ms=2000)
        assert client.load_markets()["BTC/USDT"]["precision"]["price"] == 0.01
        assert client.fetch_ohlcv("BTC/USDT", "1h", limit=5) == rows[96:101]
        assert client.fetch_ticker("BTC/USDT")["last"] == rows[100][4]
        day = client.fetch_ohlcv("BTC/USDT", "1d", since=int(rows[12][0]), limit=1)
        assert day[0][0] == rows[12][0]  # 2019-10-01T00:00Z: 24 hourly candles aggregated
        assert day[0][2] == max(r[2] for r in rows[12:36])
