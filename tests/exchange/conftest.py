"""Paper-exchange fixtures: a real SQLite store, and a tiny hand-made BTC/USDT market replayed
through the real ReplayFeed, so every expected price and fee below can be worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.config.settings import PaperSettings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import ReplayFeed
from kestrel.mode import TradingMode
from kestrel.store.base import Store
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14T22:00:00Z

# open, high, low, close. With warmup=2 rows 0-1 are visible at the start: now = T0 + 2h,
# last price 20150. Each advance() closes the next row.
CANDLES = [
    (20000, 20100, 19900, 20050),
    (20050, 20200, 20000, 20150),
    (20160, 20300, 19800, 20250),  # 2: dips to 19800
    (20250, 20600, 20200, 20500),  # 3: rallies to 20600
    (19500, 19600, 19400, 19550),  # 4: gaps down
    (19550, 21000, 19500, 20900),
    (20900, 21000, 20800, 20950),
    (20950, 21100, 20900, 21000),
]

SETTINGS = PaperSettings(
    taker_fee=Decimal("0.001"), maker_fee=Decimal("0.0008"), slippage_bps=Decimal("5")
)


def write_market(folder: Path) -> Path:
    path = folder / "BTC_USDT-1h.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for i, (o, h, low, c) in enumerate(CANDLES):
        lines.append(f"{T0 + i * HOUR},{o},{h},{low},{c},{10 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def store(tmp_data_dir: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_data_dir / "demo.sqlite", TradingMode.DEMO)
    yield opened
    opened.close()


@pytest.fixture
def feed(store: SQLiteStore, tmp_path: Path) -> ReplayFeed:
    return ReplayFeed({"BTC/USDT": write_market(tmp_path)}, store, warmup=2)


def make_exchange(
    store: Store, feed: ReplayFeed, balances: dict[str, Decimal] | None = None
) -> PaperExchange:
    markets = {"BTC/USDT": default_markets()["BTC/USDT"]}
    return PaperExchange(store, feed, markets, SETTINGS, balances)


@pytest.fixture
def paper(store: SQLiteStore, feed: ReplayFeed) -> PaperExchange:
    return make_exchange(store, feed)


@pytest.fixture
def rich(store: SQLiteStore, feed: ReplayFeed) -> PaperExchange:
    """An account that also holds 1 BTC, for sells."""
    return make_exchange(store, feed, {"USDT": Decimal("10000"), "BTC": Decimal("1")})


def exact_balances(store: SQLiteStore) -> dict[str, Decimal]:
    """The account's totals as stored (strings), so assertions are exact."""
    found = store.get_state("paper_account")
    assert found is not None
    return {c: Decimal(v) for c, v in found[0]["balances"].items()}
