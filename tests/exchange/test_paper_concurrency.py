"""Several processes sharing one store: no order lost or doubled, no fill booked twice."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.market import ReplayFeed
from kestrel.store.sqlite import SQLiteStore
from tests.exchange import paper_workers
from tests.exchange.conftest import exact_balances, make_exchange, write_market

PROCESSES = 3


def run_processes(target: Callable[..., None], *args: Any) -> list[tuple[str, Any, int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, f"p{n}", barrier, results))
        for n in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    for status, detail, _ in outcomes:
        assert status == "ok", detail
    return outcomes


@pytest.mark.timeout(300)
def test_processes_never_lose_double_or_refill_orders(store: SQLiteStore, tmp_path: Path) -> None:
    candles = write_market(tmp_path)
    feed = ReplayFeed({"BTC/USDT": candles}, store, warmup=2)
    paper = make_exchange(store, feed)
    paper.fetch_balance()  # the account exists before the race

    placed = run_processes(paper_workers.place_orders, store.path, candles)
    created_ids = [oid for _, ids, _ in placed for oid in ids]
    assert sum(dups for _, _, dups in placed) == PROCESSES * paper_workers.ORDERS_EACH - 1
    orders = paper.fetch_orders("BTC/USDT")
    expected = PROCESSES * paper_workers.ORDERS_EACH + 1  # + the single "shared" order
    assert len(orders) == expected
    assert len({o["id"] for o in orders}) == expected
    assert set(created_ids) <= {o["id"] for o in orders}
    assert sum(o["clientOrderId"] == "shared" for o in orders) == 1

    feed.advance()  # candle 2 dips through every order's limit
    read = run_processes(paper_workers.read_everything, store.path, candles)
    for _, trade_ids, _ in read:
        assert len(trade_ids) == expected and len(set(trade_ids)) == expected
    trades = paper.fetch_my_trades("BTC/USDT")
    assert sorted(t["order"] for t in trades) == sorted(o["id"] for o in orders)
    cost = Decimal("0.01") * Decimal("19850") * expected
    assert exact_balances(store) == {  # maker fee 0.08%, paid in BTC by the buys
        "USDT": Decimal(10000) - cost,
        "BTC": Decimal("0.01") * expected * (1 - Decimal("0.0008")),
    }


def test_two_connections_in_one_process_see_one_account(store: SQLiteStore, tmp_path: Path) -> None:
    candles = write_market(tmp_path)
    other_store = SQLiteStore(store.path, store.mode)
    try:
        a = make_exchange(store, ReplayFeed({"BTC/USDT": candles}, store, warmup=2))
        b_feed = ReplayFeed({"BTC/USDT": candles}, other_store, warmup=2)
        b = make_exchange(other_store, b_feed)
        order = a.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "x"})
        assert b.fetch_order(None, params={"clientOrderId": "x"})["id"] == order["id"]
        b_feed.advance()  # the clock is shared too: a sees the candle b's feed revealed
        assert a.fetch_order(order["id"])["status"] == "closed"
        assert len(b.fetch_my_trades()) == 1
    finally:
        other_store.close()
