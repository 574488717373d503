"""Code run in spawned child processes by test_paper_concurrency (so it must be importable)."""

from __future__ import annotations

import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_errors import PaperDuplicateOrder
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import ReplayFeed
from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore

ORDERS_EACH = 5


def open_exchange(db: Path, candles: Path) -> tuple[SQLiteStore, PaperExchange]:
    from tests.exchange.conftest import SETTINGS

    store = SQLiteStore(db, TradingMode.DEMO)
    feed = ReplayFeed({"BTC/USDT": candles}, store, warmup=2)
    markets = {"BTC/USDT": default_markets()["BTC/USDT"]}
    return store, PaperExchange(store, feed, markets, SETTINGS)


def place_orders(db: Path, candles: Path, tag: str, barrier: Barrier, out: Queue[Any]) -> None:
    """Each process: its own orders plus one race for a shared client order id."""
    try:
        store, paper = open_exchange(db, candles)
        barrier.wait()
        created = []
        duplicates = 0
        for i in range(ORDERS_EACH):
            created.append(
                paper.create_order(
                    "BTC/USDT", "limit", "buy", 0.01, 19850, {"clientOrderId": f"{tag}-{i}"}
                )["id"]
            )
            try:
                paper.create_order(
                    "BTC/USDT", "limit", "buy", 0.01, 19850, {"clientOrderId": "shared"}
                )
            except PaperDuplicateOrder:
                duplicates += 1
        store.close()
        out.put(("ok", created, duplicates))
    except Exception:
        out.put(("error", traceback.format_exc(), 0))


def read_everything(db: Path, candles: Path, tag: str, barrier: Barrier, out: Queue[Any]) -> None:
    """Each process catches up matching at the same moment: fills must happen once."""
    try:
        store, paper = open_exchange(db, candles)
        barrier.wait()
        for _ in range(5):
            paper.fetch_balance()
            paper.fetch_open_orders("BTC/USDT")
        trades = paper.fetch_my_trades("BTC/USDT")
        store.close()
        out.put(("ok", [t["id"] for t in trades], 0))
    except Exception:
        out.put(("error", traceback.format_exc(), 0))
