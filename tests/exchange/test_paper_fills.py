"""Fills: market at the next open plus slippage, limit crossing, stops, fees to the Decimal."""

from __future__ import annotations

from decimal import Decimal

from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.paper import PaperExchange
from kestrel.market import ReplayFeed
from kestrel.store.sqlite import SQLiteStore
from tests.exchange.conftest import HOUR, T0, exact_balances


def test_is_an_exchange_client(paper: PaperExchange) -> None:
    assert isinstance(paper, ExchangeClient)
    assert paper.id == "paper"


def test_market_buy_fills_at_next_open_plus_slippage_and_taker_fee(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    assert order["status"] == "open" and order["filled"] == 0.0
    assert order["timestamp"] == T0 + 2 * HOUR  # the feed's now, not the wall clock
    # reserved at the last close 20150 + 5 bps (20160.075 -> tick up 20160.08) + 0.1% fee
    reserved = Decimal("0.01") * Decimal("20160.08") * Decimal("1.001")
    balance = paper.fetch_balance()
    assert balance["USDT"] == {
        "free": float(Decimal(10000) - reserved),
        "used": float(reserved),
        "total": 10000.0,
    }

    feed.advance()  # candle 2 (open 20160) closes
    filled = paper.fetch_order(order["id"], "BTC/USDT")
    price = Decimal("20170.08")  # 20160 * 1.0005
    cost = Decimal("0.01") * price
    fee = cost * Decimal("0.001")
    assert filled["status"] == "closed"
    assert filled["average"] == filled["price"] == float(price)
    assert (filled["filled"], filled["remaining"], filled["cost"]) == (0.01, 0.0, float(cost))
    assert filled["fee"] == {"cost": float(fee), "currency": "USDT"}
    assert filled["lastTradeTimestamp"] == T0 + 2 * HOUR
    [trade] = filled["trades"]
    assert trade["takerOrMaker"] == "taker" and trade["price"] == float(price)
    assert trade["order"] == order["id"] and trade["fee"]["rate"] == 0.001
    assert exact_balances(store) == {
        "USDT": Decimal(10000) - cost - fee,  # 9798.0974992
        "BTC": Decimal("0.01"),
    }
    assert exact_balances(store)["USDT"] == Decimal("9798.0974992")
    assert paper.fetch_balance()["used"] == {"BTC": 0.0, "USDT": 0.0}


def test_market_sell_fills_below_next_open(
    rich: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    order = rich.create_order("BTC/USDT", "market", "sell", 0.5)
    assert rich.fetch_balance()["BTC"] == {"free": 0.5, "used": 0.5, "total": 1.0}
    feed.advance()
    price = Decimal("20149.92")  # 20160 * 0.9995
    cost = Decimal("0.5") * price
    fee = cost * Decimal("0.001")
    assert rich.fetch_order(order["id"])["average"] == float(price)
    assert exact_balances(store) == {
        "USDT": Decimal(10000) + cost - fee,
        "BTC": Decimal("0.5"),
    }
    assert exact_balances(store)["USDT"] == Decimal("20064.88504")


def test_nothing_fills_before_the_next_candle_closes(paper: PaperExchange) -> None:
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    for _ in range(3):
        assert paper.fetch_order(order["id"])["status"] == "open"
    assert paper.fetch_my_trades("BTC/USDT") == []


def test_limit_buy_fills_at_its_price_when_crossed_as_maker(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    near = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19850)  # candle 2 dips to 19800
    far = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19700)  # only candle 4 reaches
    feed.advance()
    got = paper.fetch_order(near["id"])
    assert got["status"] == "closed" and got["average"] == 19850.0
    assert got["trades"][0]["takerOrMaker"] == "maker"
    assert got["fee"]["cost"] == float(Decimal("1985") * Decimal("0.0008"))
    feed.advance()  # candle 3 stays above 19700
    assert paper.fetch_order(far["id"])["status"] == "open"
    feed.advance()  # candle 4 gaps below: a resting limit fills at its own price
    assert paper.fetch_order(far["id"])["average"] == 19700.0
    spent = (Decimal("1985") + Decimal("1970")) * Decimal("1.0008")
    assert exact_balances(store) == {"USDT": Decimal(10000) - spent, "BTC": Decimal("0.2")}


def test_marketable_limit_fills_like_market_but_never_beyond_its_limit(
    paper: PaperExchange, feed: ReplayFeed
) -> None:
    generous = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 20500)
    tight = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 20165)
    feed.advance()  # candle 2 opens at 20160
    first = paper.fetch_order(generous["id"])
    assert first["average"] == 20170.08 and first["trades"][0]["takerOrMaker"] == "taker"
    second = paper.fetch_order(tight["id"])
    assert second["average"] == 20165.0 and second["trades"][0]["takerOrMaker"] == "taker"
    assert first["price"] == 20500.0  # a limit order reports its limit as price


def test_limit_sell_fills_when_a_high_reaches_it(rich: PaperExchange, feed: ReplayFeed) -> None:
    order = rich.create_order("BTC/USDT", "limit", "sell", 0.25, 20550)
    feed.advance()
    assert rich.fetch_order(order["id"])["status"] == "open"  # candle 2 high 20300
    feed.advance()  # candle 3 high 20600
    got = rich.fetch_order(order["id"])
    assert got["average"] == 20550.0 and got["trades"][0]["takerOrMaker"] == "maker"


def test_stop_sell_triggers_at_the_stop_with_adverse_slippage(
    rich: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    stop = rich.create_order("BTC/USDT", "stop_market", "sell", 0.5, None, {"stopPrice": 19850})
    assert stop["type"] == "stop_market" and stop["stopPrice"] == 19850.0
    assert stop["triggerPrice"] == 19850.0 and stop["price"] is None
    feed.advance()  # candle 2: low 19800 crosses 19850
    got = rich.fetch_order(stop["id"])
    price = Decimal("19840.07")  # 19850 * 0.9995 = 19840.075, rounded down to the tick
    assert got["status"] == "closed" and got["average"] == float(price)
    assert got["trades"][0]["takerOrMaker"] == "taker"
    cost = Decimal("0.5") * price
    assert exact_balances(store)["USDT"] == Decimal(10000) + cost - cost * Decimal("0.001")


def test_stop_gapped_through_fills_at_the_open(rich: PaperExchange, feed: ReplayFeed) -> None:
    stop = rich.create_order("BTC/USDT", "market", "sell", 0.5, None, {"stopPrice": 19600})
    feed.advance(2)
    assert rich.fetch_order(stop["id"])["status"] == "open"
    feed.advance()  # candle 4 opens at 19500, below the stop
    assert rich.fetch_order(stop["id"])["average"] == 19490.25  # 19500 * 0.9995


def test_stop_buy_triggers_on_the_way_up(paper: PaperExchange, feed: ReplayFeed) -> None:
    stop = paper.create_order("BTC/USDT", "stop_market", "buy", 0.01, None, {"triggerPrice": 20400})
    feed.advance(2)  # candle 3 high 20600 crosses 20400 (opened at 20250)
    assert paper.fetch_order(stop["id"])["average"] == 20410.2  # 20400 * 1.0005


def test_fills_caught_up_after_several_candles_in_order(
    rich: PaperExchange, feed: ReplayFeed
) -> None:
    a = rich.create_order("BTC/USDT", "limit", "sell", 0.1, 20550)
    b = rich.create_order("BTC/USDT", "limit", "buy", 0.1, 19450)
    c = rich.create_order("BTC/USDT", "market", "buy", 0.1)
    feed.advance(6)  # nobody looked for 6 candles
    trades = rich.fetch_my_trades("BTC/USDT")
    assert [(t["order"], t["timestamp"]) for t in trades] == [
        (c["id"], T0 + 2 * HOUR),
        (a["id"], T0 + 3 * HOUR),
        (b["id"], T0 + 4 * HOUR),
    ]
    assert len({t["id"] for t in trades}) == 3
    assert rich.fetch_open_orders() == []
    assert [o["id"] for o in rich.fetch_closed_orders("BTC/USDT")] == [a["id"], b["id"], c["id"]]


def test_market_buy_is_canceled_when_the_fill_costs_more_than_the_balance(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    from tests.exchange.conftest import make_exchange

    # reservation at 20160.08 fits; the fill at 20170.08 does not
    tight = make_exchange(store, feed, {"USDT": Decimal("9889")})
    order = tight.create_order("BTC/USDT", "market", "buy", 0.49)
    feed.advance()
    got = tight.fetch_order(order["id"])
    assert got["status"] == "canceled" and got["filled"] == 0.0
    assert "insufficient USDT" in got["info"]["reason"]
    assert exact_balances(store) == {"USDT": Decimal("9889")}
