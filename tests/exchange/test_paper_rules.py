"""Refusals and bookkeeping: precision, minimums, funds, duplicate client ids, lookup, cancel."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from kestrel.errors import (
    DuplicateOrderOnExchange,
    InsufficientFunds,
    OrderNotFoundOnExchange,
    OrderRejected,
)
from kestrel.exchange.errors import FailureKind, classify
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_errors import PaperDuplicateOrder, PaperOrderNotFound
from kestrel.market import ReplayFeed
from kestrel.store.sqlite import SQLiteStore
from tests.exchange.conftest import exact_balances


def state(store: SQLiteStore) -> tuple[dict[str, object], int] | None:
    return store.get_state("paper_account")


def test_amount_rounds_down_to_the_step_and_price_to_the_tick(paper: PaperExchange) -> None:
    order = paper.create_order("BTC/USDT", "limit", "buy", 0.0123456, 19850.126)
    assert order["amount"] == 0.01234
    assert order["price"] == 19850.12  # a buy limit rounds down: never pay more than asked
    assert order["info"]["amount"] == "0.01234"  # exact in the stored document
    assert paper.amount_to_precision("BTC/USDT", 0.0123456) == "0.01234"


@pytest.mark.parametrize(
    ("amount", "price", "needle"),
    [
        (0.000004, None, "minimum amount is 0.00001"),  # rounds down to 0
        (0.0002, None, "minimum notional 5 USDT"),  # 0.0002 x 20150 = 4.03
        (0.001, 4000, "minimum notional 5 USDT"),  # limit value uses the limit price
    ],
)
def test_below_minimums_is_rejected_saying_the_minimum(
    paper: PaperExchange, store: SQLiteStore, amount: float, price: float | None, needle: str
) -> None:
    kind = "market" if price is None else "limit"
    with pytest.raises(OrderRejected, match=needle) as caught:
        paper.create_order("BTC/USDT", kind, "buy", amount, price)
    assert isinstance(caught.value, ccxt.InvalidOrder)
    assert classify(caught.value) is FailureKind.REJECTED
    assert state(store) is None  # nothing was written


def test_unknown_symbol_and_unsupported_requests(paper: PaperExchange) -> None:
    with pytest.raises(OrderRejected, match="DOGE/EUR") as caught:
        paper.create_order("DOGE/EUR", "market", "buy", 1)
    assert isinstance(caught.value, ccxt.BadSymbol)
    with pytest.raises(ccxt.BadSymbol):
        paper.market("DOGE/EUR")
    with pytest.raises(OrderRejected, match="not supported"):
        paper.create_order("BTC/USDT", "trailing_stop", "buy", 0.01)
    with pytest.raises(OrderRejected, match="take-profit orders are not supported"):
        paper.create_order("BTC/USDT", "market", "sell", 0.01, None, {"takeProfitPrice": 21000})
    with pytest.raises(OrderRejected, match="stop_loss_limit order needs a price"):
        paper.create_order("BTC/USDT", "stop_loss_limit", "sell", 0.01, None, {"stopPrice": 19000})
    with pytest.raises(OrderRejected, match="needs params stopPrice"):
        paper.create_order("BTC/USDT", "stop_market", "sell", 0.01)
    with pytest.raises(OrderRejected, match="needs a price"):
        paper.create_order("BTC/USDT", "limit", "buy", 0.01)
    with pytest.raises(OrderRejected, match="side"):
        paper.create_order("BTC/USDT", "market", "hold", 0.01)


def test_a_stop_that_would_trigger_at_once_is_refused(rich: PaperExchange) -> None:
    with pytest.raises(OrderRejected, match="immediately trigger"):
        rich.create_order("BTC/USDT", "stop_market", "sell", 0.1, None, {"stopPrice": 20200})


def test_insufficient_funds_changes_nothing(paper: PaperExchange, store: SQLiteStore) -> None:
    paper.create_order("BTC/USDT", "limit", "buy", 0.3, 20000)  # reserves 6000 USDT (no fee:
    before = state(store)  # a buy pays its fee in BTC)
    with pytest.raises(
        InsufficientFunds, match=r"needs 6000.0 USDT but only 4000.0 USDT is free"
    ) as caught:
        paper.create_order("BTC/USDT", "limit", "buy", 0.3, 20000)
    assert isinstance(caught.value, ccxt.InsufficientFunds)
    with pytest.raises(InsufficientFunds, match="BTC"):
        paper.create_order("BTC/USDT", "market", "sell", 0.01)  # holds no BTC
    assert state(store) == before
    assert len(paper.fetch_open_orders("BTC/USDT")) == 1


def test_duplicate_client_order_id_creates_nothing(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    params = {"clientOrderId": "kestrel-abc-1"}
    first = paper.create_order("BTC/USDT", "market", "buy", 0.01, None, params)
    assert first["clientOrderId"] == "kestrel-abc-1"
    before = state(store)
    with pytest.raises(PaperDuplicateOrder, match="Duplicate order sent") as caught:
        paper.create_order("BTC/USDT", "market", "buy", 0.01, None, params)
    error = caught.value
    assert isinstance(error, DuplicateOrderOnExchange) and isinstance(error, OrderRejected)
    assert isinstance(error, ccxt.DuplicateOrderId)
    assert classify(error) is FailureKind.DUPLICATE
    assert state(store) == before
    feed.advance()  # still a duplicate once the first has filled
    with pytest.raises(PaperDuplicateOrder):
        paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000, params)
    assert len(paper.fetch_orders()) == 1 and len(paper.fetch_my_trades()) == 1


def test_fetch_order_by_client_order_id(paper: PaperExchange) -> None:
    created = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000, {"clientOrderId": "c-1"})
    other = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19001)
    assert other["clientOrderId"].startswith("paper-")
    assert paper.fetch_order(None, params={"clientOrderId": "c-1"})["id"] == created["id"]
    by_binance_name = paper.fetch_order("", "BTC/USDT", {"origClientOrderId": "c-1"})
    assert by_binance_name["id"] == created["id"]
    both = {"clientOrderId": "c-1", "origClientOrderId": "c-1"}
    assert paper.fetch_order(created["id"], "BTC/USDT", both)["id"] == created["id"]
    with pytest.raises(PaperOrderNotFound):  # id and client id must name the same order
        paper.fetch_order(other["id"], "BTC/USDT", {"clientOrderId": "c-1"})
    with pytest.raises(PaperOrderNotFound):
        paper.fetch_order(None, params={"clientOrderId": "never-sent"})
    with pytest.raises(PaperOrderNotFound):
        paper.fetch_order("999")
    with pytest.raises(PaperOrderNotFound):
        paper.fetch_order(created["id"], "ETH/USDT")


def test_cancel_releases_funds_and_only_open_orders_cancel(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    resting = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19000)
    market = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    feed.advance()
    canceled = paper.cancel_order(resting["id"], "BTC/USDT")
    assert canceled["status"] == "canceled" and canceled["filled"] == 0.0
    assert paper.fetch_balance()["used"]["USDT"] == 0.0
    with pytest.raises(PaperOrderNotFound, match="canceled") as again:
        paper.cancel_order(resting["id"], "BTC/USDT")
    assert isinstance(again.value, OrderNotFoundOnExchange)
    assert isinstance(again.value, ccxt.OrderNotFound)
    assert classify(again.value) is FailureKind.NOT_FOUND
    with pytest.raises(PaperOrderNotFound, match="Unknown order sent"):
        paper.cancel_order(market["id"])  # already filled
    assert [o["id"] for o in paper.fetch_canceled_orders()] == [resting["id"]]
    assert [o["id"] for o in paper.fetch_closed_orders()] == [market["id"]]
    feed.advance(3)  # a canceled order never fills later (candle 4 reaches 19400)
    assert len(paper.fetch_my_trades()) == 1
    assert exact_balances(store)["BTC"] == Decimal("0.00999")  # less the 0.1% taker fee


def test_cancel_by_client_order_id(paper: PaperExchange) -> None:
    paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000, {"clientOrderId": "cx"})
    got = paper.cancel_order(None, "BTC/USDT", {"clientOrderId": "cx"})
    assert got["status"] == "canceled" and got["clientOrderId"] == "cx"


def test_since_and_limit_follow_ccxt(paper: PaperExchange, feed: ReplayFeed) -> None:
    ids = []
    for _ in range(3):
        ids.append(paper.create_order("BTC/USDT", "limit", "buy", 0.01, 19000)["id"])
        feed.advance()
    opened = paper.fetch_open_orders("BTC/USDT")
    assert [o["id"] for o in opened] == ids
    assert [o["id"] for o in paper.fetch_open_orders("BTC/USDT", limit=2)] == ids[1:]
    since = opened[1]["timestamp"]
    assert [o["id"] for o in paper.fetch_open_orders(since=since, limit=1)] == [ids[1]]


def test_balance_structure(rich: PaperExchange) -> None:
    balance = rich.fetch_balance()
    assert balance["free"] == {"BTC": 1.0, "USDT": 10000.0}
    assert balance["used"] == {"BTC": 0.0, "USDT": 0.0}
    assert balance["total"] == {"BTC": 1.0, "USDT": 10000.0}
    assert balance["BTC"] == {"free": 1.0, "used": 0.0, "total": 1.0}
    assert "info" in balance
