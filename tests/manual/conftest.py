"""Runtimes for manual-action tests.

DEMO: the real PaperExchange on a real SQLite store, priced by a ReplayFeed over two small
hand-made markets (BTC/USDT, ETH/USDT), so amounts, prices and fees can be worked out by hand.
REAL: the Binance REST emulator through a real `ccxt.binance`, its candles laid on the wall
clock (the latest closed candle closed at the top of the current hour) so the freshness gate
sees live data, on a real SQLite REAL-mode store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulator import AccountConfig, BinanceEmulator, MarketConfig
from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import ReplayFeed
from kestrel.mode import TradingMode, trading_mode
from kestrel.runtime import Runtime, build_runtime
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14T22:00:00Z
WARMUP = 3

# open, high, low, close per hour. Rows 0..2 are visible at the start (now = T0 + 3h, BTC last
# 20150); each feed.advance() closes one more row and market orders fill at its open.
BTC = [
    (20000, 20100, 19900, 20050),
    (20050, 20200, 20000, 20100),
    (20100, 20200, 20000, 20150),
    (20150, 20300, 20100, 20200),  # 3: a market order placed at the start fills at 20150
    (20200, 20400, 20100, 20300),
    (20300, 20500, 20200, 20400),
    (20400, 20600, 20300, 20500),
    (20500, 20700, 20400, 20600),
    (20600, 20800, 20500, 20700),
    (20700, 20900, 20600, 20800),
]
ETH = [(o / 10, h / 10, low / 10, c / 10) for o, h, low, c in BTC]


def write_csv(folder: Path, name: str, rows: list[tuple[float, float, float, float]]) -> Path:
    path = folder / name
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{T0 + i * HOUR},{o},{h},{lo},{c},{10 + i}" for i, (o, h, lo, c) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_settings(data_dir: Path, replay_dir: Path | None = None, **extra: Any) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=[
            # a percent-stop profile: its stop-loss / take-profit need no ATR
            {
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "trade_amount_usd": "100",
                "strategy": "SCALP/CONSERVATIVE",
            },
            # the default profile: ATR stops, which these few candles cannot give
            {"symbol": "ETH/USDT", "timeframe": "1h", "trade_amount_usd": "100"},
        ],
        paper={
            "starting_balance": "10000",
            "taker_fee": "0.001",
            "maker_fee": "0.001",
            "slippage_bps": "0",
            "market_data": "replay",
            "replay_dir": replay_dir,
        },
        **extra,
    )


@pytest.fixture
def demo_store(tmp_data_dir: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_data_dir / "demo.sqlite", TradingMode.DEMO)
    yield store
    store.close()


@pytest.fixture
def demo_rt(demo_store: SQLiteStore, tmp_path: Path, tmp_data_dir: Path) -> Iterator[Runtime]:
    files = {
        "BTC/USDT": write_csv(tmp_path, "BTC_USDT-1h.csv", BTC),
        "ETH/USDT": write_csv(tmp_path, "ETH_USDT-1h.csv", ETH),
    }
    feed = ReplayFeed(files, demo_store, warmup=WARMUP)
    settings = demo_settings(tmp_data_dir, replay_dir=tmp_path)
    table = default_markets()
    markets = {s: table[s] for s in files}
    exchange = PaperExchange(demo_store, feed, markets, settings.paper)
    with trading_mode(TradingMode.DEMO):
        yield Runtime(settings=settings, store=demo_store, exchange=exchange, feed=feed)


def advance(rt: Runtime, steps: int = 1) -> None:
    """Close the next candle(s) and bring the store to the exchange's truth."""
    from kestrel.execution.sync import sync_orders

    assert rt.feed is not None
    rt.feed.advance(steps)
    sync_orders(rt.store, rt.exchange)


# -- REAL: the emulator -------------------------------------------------------------------------

KEY, SECRET = "manual-key", "manual-secret"
START = 5  # the candle that has just closed when the emulator starts
# BTC/USDT closes per hour: 20000 at the start; candle START+2 jumps 11% (price-move test).
REAL_CLOSES = [19200, 19400, 19600, 19800, 19900, 20000, 20100, 22200, 22400, 22600]


def wall_clock_rows(closes: list[float]) -> list[list[float | int | str]]:
    """Rows whose candle START closed at the top of the current hour."""
    top = int(time.time() * 1000) // HOUR * HOUR
    first_open = top - (START + 1) * HOUR
    rows: list[list[float | int | str]] = []
    previous = closes[0]
    for i, close in enumerate(closes):
        high, low = max(previous, close) + 10, min(previous, close) - 10
        rows.append([first_open + i * HOUR, previous, high, low, close, 50])
        previous = close
    return rows


def real_settings(data_dir: Path, url: str) -> KestrelSettings:
    return load_settings(
        mode="REAL",
        data_dir=data_dir,
        watchlist=[
            {
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "trade_amount_usd": "100",
                "strategy": "SCALP/CONSERVATIVE",
            }
        ],
        exchange_api={"url": url, "rate_limit": False, "timeout_s": 5},
    )


@pytest.fixture
def emulator() -> Iterator[BinanceEmulator]:
    market = MarketConfig(
        symbol="BTC/USDT",
        candles=wall_clock_rows(REAL_CLOSES),
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_notional=Decimal("5"),
    )
    account = AccountConfig(
        api_key=KEY, secret=SECRET, balances={"USDT": Decimal("10000"), "BTC": Decimal("0")}
    )
    emu = BinanceEmulator([market], [account], start_index=START).start()
    yield emu
    errors = emu.internal_errors
    emu.stop()
    assert errors == [], "emulator hit internal errors:\n" + "\n".join(errors)


@pytest.fixture
def real_rt(
    emulator: BinanceEmulator, tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The production REAL runtime (wallet factory, ccxt wrapper, store router), its exchange
    URL pointed at the emulator and its credentials in the environment."""
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    settings = real_settings(tmp_data_dir, emulator.url)
    with trading_mode(TradingMode.REAL):
        rt = build_runtime(settings)
        yield rt
        rt.store.close()


class Clock:
    """An injectable UTC clock for token expiry."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()
