"""Fills as strict as Binance spot, worked out by hand on conftest's candles (volume 10 + i):
market orders from the next open plus spread and impact, limits only when traded through,
partial fills bounded by the candle's volume, resting stops, fees in Binance's currency."""

from __future__ import annotations

from decimal import Decimal

from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import ReplayFeed
from kestrel.store.sqlite import SQLiteStore
from tests.exchange.conftest import HOUR, SETTINGS, T0, exact_balances, make_exchange


def test_is_an_exchange_client(paper: PaperExchange) -> None:
    assert isinstance(paper, ExchangeClient)
    assert paper.id == "paper"


def test_market_buy_fills_at_next_open_plus_spread_and_impact_fee_in_base(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    assert order["status"] == "open" and order["filled"] == 0.0
    assert order["timestamp"] == T0 + 2 * HOUR  # the feed's now, not the wall clock
    # reserved at the last close 20150 + 5 bps (20160.075 -> tick up 20160.08); no fee: a
    # buy pays its fee out of the BTC it gets
    reserved = Decimal("0.01") * Decimal("20160.08")
    balance = paper.fetch_balance()
    assert balance["USDT"] == {
        "free": float(Decimal(10000) - reserved),
        "used": float(reserved),
        "total": 10000.0,
    }

    feed.advance()  # candle 2 (open 20160, range 500, volume 12) closes
    filled = paper.fetch_order(order["id"], "BTC/USDT")
    # 20160 + 5 bps (10.08) + range 500 x 0.01/12 of the volume (0.41666) = 20170.4966..
    price = Decimal("20170.50")  # up to the tick
    cost = Decimal("0.01") * price
    fee = Decimal("0.01") * Decimal("0.001")  # in BTC
    assert filled["status"] == "closed"
    assert filled["average"] == filled["price"] == float(price)
    assert (filled["filled"], filled["remaining"], filled["cost"]) == (0.01, 0.0, float(cost))
    assert filled["fee"] == {"cost": float(fee), "currency": "BTC"}
    assert filled["lastTradeTimestamp"] == T0 + 2 * HOUR
    [trade] = filled["trades"]
    assert trade["takerOrMaker"] == "taker" and trade["price"] == float(price)
    assert trade["order"] == order["id"] and trade["fee"]["rate"] == 0.001
    assert trade["fee"]["currency"] == "BTC"
    assert exact_balances(store) == {"USDT": Decimal("9798.2950"), "BTC": Decimal("0.00999")}
    assert paper.fetch_balance()["used"] == {"BTC": 0.0, "USDT": 0.0}


def test_market_sell_fills_below_next_open_fee_in_quote(
    rich: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    order = rich.create_order("BTC/USDT", "market", "sell", 0.5)
    assert rich.fetch_balance()["BTC"] == {"free": 0.5, "used": 0.5, "total": 1.0}
    feed.advance()
    # 20160 - 10.08 - 500 x 0.5/12 (20.8333) = 20129.0866.. -> down to the tick
    price = Decimal("20129.08")
    got = rich.fetch_order(order["id"])
    assert got["average"] == float(price)
    assert got["fee"] == {"cost": float(Decimal("10064.54") * Decimal("0.001")), "currency": "USDT"}
    assert exact_balances(store) == {
        "USDT": Decimal(10000) + Decimal("10064.54") - Decimal("10.06454"),
        "BTC": Decimal("0.5"),
    }


def test_market_orders_are_never_better_than_the_next_open(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    """Even with no spread and no impact configured, the next trade is the candle's open."""
    free = SETTINGS.model_copy(update={"slippage_bps": Decimal(0), "slippage_impact": Decimal(0)})
    paper = PaperExchange(
        store, feed, {"BTC/USDT": default_markets()["BTC/USDT"]}, free, {"USDT": Decimal(10000)}
    )
    buy = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    feed.advance()
    assert paper.fetch_order(buy["id"])["average"] == 20160.0  # candle 2's open, not its low


def test_nothing_fills_before_the_next_candle_closes(paper: PaperExchange) -> None:
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    for _ in range(3):
        assert paper.fetch_order(order["id"])["status"] == "open"
    assert paper.fetch_my_trades("BTC/USDT") == []


def test_limit_buy_fills_at_its_price_when_traded_through_as_maker(
    paper: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    near = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19850)  # candle 2 dips to 19800
    far = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19700)  # only candle 4 reaches
    feed.advance()
    got = paper.fetch_order(near["id"])
    assert got["status"] == "closed" and got["average"] == 19850.0
    assert got["trades"][0]["takerOrMaker"] == "maker"
    assert got["fee"] == {"cost": float(Decimal("0.1") * Decimal("0.0008")), "currency": "BTC"}
    feed.advance()  # candle 3 stays above 19700
    assert paper.fetch_order(far["id"])["status"] == "open"
    feed.advance()  # candle 4 gaps below: a resting limit fills at its own price
    assert paper.fetch_order(far["id"])["average"] == 19700.0
    assert exact_balances(store) == {
        "USDT": Decimal(10000) - Decimal("1985") - Decimal("1970"),
        "BTC": Decimal("0.2") - 2 * Decimal("0.00008"),
    }


def test_a_limit_only_touched_does_not_fill(paper: PaperExchange, feed: ReplayFeed) -> None:
    """Candle 2's low is exactly 19800: the orders queued there before ours may have taken
    it all, so a resting buy at 19800 waits for a candle that trades below it."""
    order = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19800)
    feed.advance()
    assert paper.fetch_order(order["id"])["status"] == "open"
    feed.advance(2)  # candle 4 trades down to 19400
    got = paper.fetch_order(order["id"])
    assert got["status"] == "closed" and got["lastTradeTimestamp"] == T0 + 4 * HOUR


def test_touch_fills_are_an_explicit_option(store: SQLiteStore, feed: ReplayFeed) -> None:
    touch = SETTINGS.model_copy(update={"limit_fill": "touch"})
    paper = PaperExchange(store, feed, {"BTC/USDT": default_markets()["BTC/USDT"]}, touch)
    order = paper.create_order("BTC/USDT", "limit", "buy", 0.1, 19800)
    feed.advance()
    got = paper.fetch_order(order["id"])
    assert got["status"] == "closed" and got["lastTradeTimestamp"] == T0 + 2 * HOUR


def test_marketable_limit_fills_like_market_but_never_beyond_its_limit(
    paper: PaperExchange, feed: ReplayFeed
) -> None:
    generous = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 20500)
    tight = paper.create_order("BTC/USDT", "limit", "buy", 0.01, 20165)
    feed.advance()  # candle 2 opens at 20160
    first = paper.fetch_order(generous["id"])
    assert first["average"] == 20170.50 and first["trades"][0]["takerOrMaker"] == "taker"
    second = paper.fetch_order(tight["id"])
    assert second["average"] == 20165.0 and second["trades"][0]["takerOrMaker"] == "taker"
    assert first["price"] == 20500.0  # a limit order reports its limit as price


def test_limit_sell_fills_when_a_high_trades_through_it(
    rich: PaperExchange, feed: ReplayFeed
) -> None:
    order = rich.create_order("BTC/USDT", "limit", "sell", 0.25, 20550)
    feed.advance()
    assert rich.fetch_order(order["id"])["status"] == "open"  # candle 2 high 20300
    feed.advance()  # candle 3 high 20600
    got = rich.fetch_order(order["id"])
    assert got["average"] == 20550.0 and got["trades"][0]["takerOrMaker"] == "maker"


def test_a_large_order_fills_partially_within_the_candles_volume(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    """10% of candle 2's 12 BTC is 1.2 BTC: a 2 BTC market buy gets 1.2 there and the rest,
    0.8, from candle 3 (volume 13, room 1.3); a second order in candle 2 gets nothing there."""
    paper = make_exchange(store, feed, {"USDT": Decimal("100000")})
    big = paper.create_order("BTC/USDT", "market", "buy", 2)
    small = paper.create_order("BTC/USDT", "market", "buy", 0.1)
    feed.advance()
    got = paper.fetch_order(big["id"])
    assert got["status"] == "open" and (got["filled"], got["remaining"]) == (1.2, 0.8)
    # 20160 + 10.08 + 500 x 1.2/12 (50) = 20220.08
    assert got["trades"][0]["price"] == 20220.08
    assert paper.fetch_order(small["id"])["filled"] == 0.0
    assert paper.fetch_balance()["used"]["USDT"] == float(Decimal("0.9") * Decimal("20160.08"))
    feed.advance()
    got = paper.fetch_order(big["id"])
    assert got["status"] == "closed" and [t["amount"] for t in got["trades"]] == [1.2, 0.8]
    # 20250 + 10.125 + 400 x 0.8/13 (24.615..) = 20284.74.. -> 20284.75
    assert got["trades"][1]["price"] == 20284.75
    assert got["trades"][1]["timestamp"] == T0 + 3 * HOUR
    assert paper.fetch_order(small["id"])["status"] == "closed"
    assert paper.fetch_open_orders() == []


def test_a_marketable_limit_left_unfinished_by_the_cap_keeps_taking(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    """It does not start resting at its limit, far from the market: it keeps taking at the
    next open (plus slippage), still never beyond its limit."""
    paper = make_exchange(store, feed, {"USDT": Decimal("100000")})
    order = paper.create_order("BTC/USDT", "limit", "buy", 2, 20500)
    feed.advance(2)
    got = paper.fetch_order(order["id"])
    assert [(t["amount"], t["price"], t["takerOrMaker"]) for t in got["trades"]] == [
        (1.2, 20220.08, "taker"),  # as the market buy above, in candle 2
        (0.8, 20284.75, "taker"),  # candle 3: from its open 20250, not at the 20500 limit
    ]


def test_stop_sell_rests_and_triggers_at_the_stop_with_slippage(
    rich: PaperExchange, feed: ReplayFeed, store: SQLiteStore
) -> None:
    stop = rich.create_order("BTC/USDT", "stop_market", "sell", 0.5, None, {"stopPrice": 19850})
    assert stop["type"] == "stop_market" and stop["stopPrice"] == 19850.0
    assert stop["triggerPrice"] == 19850.0 and stop["price"] is None
    assert rich.fetch_balance()["BTC"]["used"] == 0.5  # it reserves the holding, as on Binance
    feed.advance()  # candle 2: low 19800 reaches 19850
    got = rich.fetch_order(stop["id"])
    # 19850 - 9.925 - 500 x 0.5/12 (20.8333) = 19819.2416.. -> down to the tick
    price = Decimal("19819.24")
    assert got["status"] == "closed" and got["average"] == float(price)
    assert got["trades"][0]["takerOrMaker"] == "taker"
    cost = Decimal("0.5") * price
    assert exact_balances(store)["USDT"] == Decimal(10000) + cost - cost * Decimal("0.001")


def test_stop_gapped_through_fills_from_the_worse_open(
    rich: PaperExchange, feed: ReplayFeed
) -> None:
    stop = rich.create_order("BTC/USDT", "market", "sell", 0.5, None, {"stopLossPrice": 19600})
    assert stop["type"] == "stop_market"  # ccxt's unified stop-loss param, as Kestrel sends it
    feed.advance(2)
    assert rich.fetch_order(stop["id"])["status"] == "open"
    feed.advance()  # candle 4 opens at 19500, below the stop: 19600 never traded
    # 19500 - 9.75 - 200 x 0.5/14 (7.1428) = 19483.107.. -> 19483.10
    assert rich.fetch_order(stop["id"])["average"] == 19483.10


def test_stop_buy_triggers_on_the_way_up(paper: PaperExchange, feed: ReplayFeed) -> None:
    stop = paper.create_order("BTC/USDT", "stop_market", "buy", 0.01, None, {"triggerPrice": 20400})
    feed.advance(2)  # candle 3 high 20600 crosses 20400 (opened at 20250)
    # 20400 + 10.2 + 400 x 0.01/13 (0.3077) = 20410.5077 -> 20410.51
    assert paper.fetch_order(stop["id"])["average"] == 20410.51


def test_stop_loss_limit_rests_then_fills_no_worse_than_its_limit(
    rich: PaperExchange, feed: ReplayFeed
) -> None:
    params = {"stopLossPrice": 19850, "stopPrice": 19850}  # what kestrel.execution.orders sends
    near = rich.create_order("BTC/USDT", "limit", "sell", 0.2, 19840, params)
    gapped = rich.create_order(
        "BTC/USDT", "stop_loss_limit", "sell", 0.2, 19550, {"stopPrice": 19600}
    )
    assert near["type"] == gapped["type"] == "stop_loss_limit"
    assert near["price"] == 19840.0 and near["stopPrice"] == 19850.0
    feed.advance()  # candle 2 reaches 19850; as a market order it would get
    got = rich.fetch_order(near["id"])  # 19850 - 9.925 - 500 x 0.2/12 = 19831.74
    assert got["average"] == 19840.0 and got["trades"][0]["takerOrMaker"] == "taker"
    feed.advance()
    assert rich.fetch_order(gapped["id"])["status"] == "open"
    feed.advance()  # candle 4 opens at 19500, below the 19550 limit: it rests, and the
    got = rich.fetch_order(gapped["id"])  # candle's high 19600 trades through it
    assert got["average"] == 19550.0 and got["trades"][0]["takerOrMaker"] == "maker"


def test_fees_in_bnb_at_a_discount_when_the_account_holds_bnb(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    bnb = SETTINGS.model_copy(update={"fee_mode": "bnb", "bnb_prices": {"USDT": Decimal(500)}})
    markets = {"BTC/USDT": default_markets()["BTC/USDT"]}
    paper = PaperExchange(store, feed, markets, bnb, {"USDT": Decimal(10000), "BNB": Decimal(1)})
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    feed.advance()
    got = paper.fetch_order(order["id"])
    # 201.7050 USDT x 0.1% x (1 - 25%) / 500 USDT per BNB = 0.0003025575 -> 8 decimals, up
    assert got["fee"] == {"cost": 0.00030256, "currency": "BNB"}
    assert got["trades"][0]["fee"]["rate"] == 0.00075
    assert got["trades"][0]["info"]["bnb_price"] == "500"
    assert exact_balances(store) == {
        "USDT": Decimal("9798.2950"),
        "BTC": Decimal("0.01"),  # the whole amount bought: the fee was paid in BNB
        "BNB": Decimal("0.99969744"),
    }


def test_bnb_mode_without_bnb_pays_the_standard_fee(store: SQLiteStore, feed: ReplayFeed) -> None:
    bnb = SETTINGS.model_copy(update={"fee_mode": "bnb", "bnb_prices": {"USDT": Decimal(500)}})
    paper = PaperExchange(store, feed, {"BTC/USDT": default_markets()["BTC/USDT"]}, bnb)
    order = paper.create_order("BTC/USDT", "market", "buy", 0.01)
    feed.advance()
    assert paper.fetch_order(order["id"])["fee"] == {"cost": 0.00001, "currency": "BTC"}


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
    assert [t["order"] for t in rich.fetch_my_trades("BTC/USDT", limit=2)] == [a["id"], b["id"]]


def test_market_buy_is_canceled_when_the_fill_costs_more_than_the_balance(
    store: SQLiteStore, feed: ReplayFeed
) -> None:
    # reservation at 20160.08 fits; the fill at 20190.50 (impact of 0.49 of 12) does not
    tight = make_exchange(store, feed, {"USDT": Decimal("9889")})
    order = tight.create_order("BTC/USDT", "market", "buy", 0.49)
    feed.advance()
    got = tight.fetch_order(order["id"])
    assert got["status"] == "canceled" and got["filled"] == 0.0
    assert "insufficient USDT" in got["info"]["reason"]
    assert exact_balances(store) == {"USDT": Decimal("9889")}
