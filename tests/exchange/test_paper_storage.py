"""The paper account as rows: a small document (open orders only) plus immutable rows per
order, fill and clientOrderId, written so that a kill between two writes loses nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import mongomock
import pytest

from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_errors import PaperDuplicateOrder
from kestrel.exchange.paper_state import STATE_KEY, PaperAccount
from kestrel.market import ReplayFeed
from kestrel.mode import TradingMode
from kestrel.store import MongoStore
from kestrel.store.sqlite import SQLiteStore
from tests.exchange.conftest import make_exchange, write_market


def document(store: SQLiteStore) -> dict[str, Any]:
    found = store.get_state(STATE_KEY)
    assert found is not None
    return found[0]


def test_history_lives_in_rows_and_the_document_holds_only_open_orders(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    filled = [paper.create_order("BTC/USDT", "market", "buy", 0.01)["id"] for _ in range(3)]
    resting = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000)
    feed.advance()
    paper.fetch_balance()  # fills: the document's journal carries the new rows ...
    assert len(document(store)["journal"]) == 6  # 3 fills and 3 closed orders
    paper.fetch_balance()  # ... until the next call finds them written and clears it
    doc = document(store)
    assert set(doc) == {
        "balances", "orders", "next_order_id", "next_trade_id", "epoch", "journal"
    }  # fmt: skip
    assert list(doc["orders"]) == [resting["id"]] and doc["journal"] == {}
    keys = [key for key, _, _ in store.list_state("paper:1:")]
    assert [k for k in keys if ":order:" in k] == [f"paper:1:order:{int(i):012d}" for i in filled]
    assert len([k for k in keys if ":fill:BTC/USDT:" in k]) == 3
    assert len([k for k in keys if ":cid:" in k]) == 4
    assert [o["id"] for o in paper.fetch_orders()] == [*filled, resting["id"]]


def test_rows_committed_in_the_journal_are_written_by_the_next_call(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    """A process killed after its document write but before its row writes: the rows are in
    the document's journal, and whoever comes next writes them."""
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "k"})
    feed.advance()
    paper.fetch_order(order["id"])
    account = PaperAccount.load(document(store))
    row_key = account.order_key(order["id"])
    row = store.get_state(row_key)
    assert row is not None
    # rebuild the state the kill leaves: the rows only in the journal, not in the store
    fresh = SQLiteStore(store.path.with_name("other.sqlite"), store.mode)
    try:
        account.journal = {key: doc for key, doc, _ in store.list_state("paper:1:")}
        fresh.put_state(STATE_KEY, account.model_dump(mode="json"), expected_version=0)
        assert fresh.list_state("paper:") == []
        again = make_exchange(fresh, ReplayFeed(feed.files, fresh, warmup=2))
        got = again.fetch_order(None, params={"clientOrderId": "k"})
        assert got["status"] == "closed" and len(got["trades"]) == 1
        assert fresh.get_state(row_key) == (row[0], 1)
        assert PaperAccount.load(fresh.get_state(STATE_KEY)[0]).journal == {}  # type: ignore[index]
    finally:
        fresh.close()


def test_an_account_stored_as_one_document_is_split_into_rows(
    paper: PaperExchange, store: SQLiteStore
) -> None:
    """Accounts written before rows existed (orders, trades and client ids in the document)
    keep every order and fill."""
    legacy = {
        "balances": {"USDT": "9798.0974992", "BTC": "0.01"},
        "orders": {
            "1": {
                "id": "1", "client_order_id": "old-1", "symbol": "BTC/USDT", "type": "market",
                "side": "buy", "amount": "0.01", "status": "closed", "timestamp": 1,
                "watch_from": 2, "candles_seen": 1, "filled": "0.01", "cost": "201.7008",
                "fee_cost": "0.2017008", "fee_currency": "USDT", "reserved_currency": "USDT",
                "reserved": "201.8", "trade_ids": ["1"], "last_update_timestamp": 1,
            },
            "2": {
                "id": "2", "client_order_id": "old-2", "symbol": "BTC/USDT", "type": "limit",
                "side": "buy", "amount": "0.01", "price": "19000", "timestamp": 1,
                "watch_from": 2, "fee_cost": "0", "fee_currency": "USDT",
                "reserved_currency": "USDT", "reserved": "190.19", "last_update_timestamp": 1,
            },
        },
        "client_ids": {"old-1": "1", "old-2": "2"},
        "trades": [
            {
                "id": "1", "order_id": "1", "client_order_id": "old-1", "symbol": "BTC/USDT",
                "type": "market", "side": "buy", "taker_or_maker": "taker", "price": "20170.08",
                "amount": "0.01", "cost": "201.7008", "fee_cost": "0.2017008",
                "fee_currency": "USDT", "fee_rate": "0.001", "timestamp": 1,
            }
        ],
        "next_order_id": 3,
        "next_trade_id": 2,
    }  # fmt: skip
    store.put_state(STATE_KEY, legacy, expected_version=0)
    assert [o["clientOrderId"] for o in paper.fetch_orders()] == ["old-1", "old-2"]
    assert paper.fetch_order(None, params={"clientOrderId": "old-1"})["fee"] == {
        "cost": 0.2017008,
        "currency": "USDT",
    }
    assert [t["id"] for t in paper.fetch_my_trades("BTC/USDT")] == ["1"]
    assert paper.fetch_balance()["used"]["USDT"] == 190.19
    assert "trades" not in document(store) and list(document(store)["orders"]) == ["2"]
    assert paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000)["id"] == "3"
    assert Decimal(document(store)["balances"]["USDT"]) == Decimal("9798.0974992")


def test_the_same_books_on_mongodb_without_transactions(tmp_path: Path) -> None:
    """The Mongo code path (mongomock: no transactions): one compare-and-set per step and
    rows found by an anchored _id prefix."""
    store = MongoStore(mongomock.MongoClient(tz_aware=True)["kestrel_demo"], TradingMode.DEMO)
    feed = ReplayFeed({"BTC/USDT": write_market(tmp_path)}, store, warmup=2)
    paper = make_exchange(store, feed)
    first = paper.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "m1"})
    second = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19850)
    feed.advance()
    assert [o["status"] for o in paper.fetch_orders()] == ["closed", "closed"]
    assert [t["order"] for t in paper.fetch_my_trades("BTC/USDT", limit=1)] == [second["id"]]
    assert paper.fetch_order(None, params={"clientOrderId": "m1"})["id"] == first["id"]
    with pytest.raises(PaperDuplicateOrder):
        paper.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "m1"})
    assert len(store.list_state("paper:1:fill:")) == 2
