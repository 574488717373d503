"""Orders, fills, trades and balances through the real ccxt client.

Expected numbers come from tests/emulator/scripted.py: price 100 at start, candle 2 dips to
95, candle 3 to 90 (volume 4), candle 4 rallies to 110; fees 0.1% in the received asset.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from emulator import AccountConfig, BinanceEmulator, FillPolicy
from tests.emulator.scripted import HOUR, T0, MakeEmulator, account, raw_request

SYMBOL = "BTC/USDT"


def balances(ex: ccxt.binance) -> dict[str, tuple[Decimal, Decimal]]:
    """(free, locked) per asset from the raw account response: exact strings, not floats."""
    raw = ex.fetch_balance()["info"]["balances"]
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in raw}


def test_market_buy_fills_at_once_with_fee_and_fills(ex: ccxt.binance) -> None:
    order = ex.create_order(SYMBOL, "market", "buy", 0.5)
    assert order["status"] == "closed"
    assert (order["filled"], order["average"], order["cost"]) == (0.5, 100.0, 50.0)
    assert len(order["trades"]) == 1
    fill = order["trades"][0]["info"]
    assert fill == {
        "price": "100.00000000",
        "qty": "0.50000000",
        "commission": "0.00050000",
        "commissionAsset": "BTC",
        "tradeId": 1,
    }
    assert balances(ex)["USDT"] == (Decimal("950"), Decimal("0"))
    assert balances(ex)["BTC"] == (Decimal("2.4995"), Decimal("0"))


def test_market_buy_by_cost_uses_quote_order_qty(ex: ccxt.binance) -> None:
    order = ex.create_market_buy_order_with_cost(SYMBOL, 10.05)
    assert order["info"]["origQuoteOrderQty"] == "10.05000000"
    assert (order["amount"], order["cost"]) == (0.1, 10.0)  # floored to the 0.001 step


def test_limit_order_rests_then_fills_when_a_candle_reaches_it(
    ex: ccxt.binance, emu: BinanceEmulator
) -> None:
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 97)
    assert order["status"] == "open" and order["trades"] == []
    assert balances(ex)["USDT"] == (Decimal("903"), Decimal("97"))
    emu.advance()  # candle 1: low 98
    assert ex.fetch_order(order["id"], SYMBOL)["status"] == "open"
    emu.advance()  # candle 2: low 95
    done = ex.fetch_order(order["id"], SYMBOL)
    assert (done["status"], done["filled"], done["average"]) == ("closed", 1.0, 97.0)
    [trade] = ex.fetch_my_trades(SYMBOL)
    assert trade["order"] == order["id"] and trade["takerOrMaker"] == "maker"
    assert trade["timestamp"] == T0 + 3 * HOUR - 1  # inside candle 2
    assert trade["fee"] == {"currency": "BTC", "cost": 0.001}
    assert balances(ex)["USDT"] == (Decimal("903"), Decimal("0"))
    assert balances(ex)["BTC"] == (Decimal("2.999"), Decimal("0"))


def test_marketable_limit_fills_at_the_market_and_releases_the_excess(ex: ccxt.binance) -> None:
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 105)
    assert (order["status"], order["average"]) == ("closed", 100.0)
    assert order["trades"][0]["takerOrMaker"] is None  # FULL fills carry no maker flag
    assert balances(ex)["USDT"] == (Decimal("900"), Decimal("0"))


def test_partial_fills_across_candles(partial_emu: BinanceEmulator) -> None:
    ex = partial_emu.ccxt_client(timeout_ms=2000)
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 97)
    partial_emu.advance(2)  # candle 2 reaches 97: 0.4 of 1
    seen = ex.fetch_order(order["id"], SYMBOL)
    assert (seen["status"], seen["filled"], seen["remaining"]) == ("open", 0.4, 0.6)
    assert seen["info"]["status"] == "PARTIALLY_FILLED"
    assert [o["id"] for o in ex.fetch_open_orders(SYMBOL)] == [order["id"]]
    assert balances(ex)["USDT"] == (Decimal("903"), Decimal("58.2"))  # 0.6 x 97 still locked
    partial_emu.advance(2)  # candles 3 and 4: 0.4 then the last 0.2
    done = ex.fetch_order(order["id"], SYMBOL)
    assert (done["status"], done["filled"]) == ("closed", 1.0)
    trades = ex.fetch_order_trades(order["id"], SYMBOL)
    assert [t["amount"] for t in trades] == [0.4, 0.4, 0.2]
    assert [t["timestamp"] for t in trades] == [T0 + k * HOUR - 1 for k in (3, 4, 5)]
    assert ex.fetch_open_orders(SYMBOL) == []


def test_volume_share_caps_fills_and_is_shared_by_orders(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(fill_policy=FillPolicy(volume_share=Decimal("0.05")))
    ex = emu.ccxt_client(timeout_ms=2000)
    first = ex.create_order(SYMBOL, "limit", "buy", 0.4, 97)
    second = ex.create_order(SYMBOL, "limit", "buy", 0.4, 97)
    emu.advance(2)  # candle 2: volume 10 -> 0.5 available, first takes 0.4, second 0.1
    assert ex.fetch_order(first["id"], SYMBOL)["filled"] == 0.4
    assert ex.fetch_order(second["id"], SYMBOL)["filled"] == 0.1
    emu.advance()  # candle 3: volume 4 -> 0.2
    assert ex.fetch_order(second["id"], SYMBOL)["filled"] == pytest.approx(0.3)


def test_zero_volume_candle_fills_nothing(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(fill_policy=FillPolicy(volume_share=Decimal("1")))
    ex = emu.ccxt_client(timeout_ms=2000)
    emu.advance(5)  # price 108
    order = ex.create_order(SYMBOL, "limit", "sell", 1, 109)
    emu.advance()  # candle 6 reaches 109 but traded nothing
    assert ex.fetch_order(order["id"], SYMBOL)["filled"] == 0.0
    emu.advance(1)  # candle 7 high 109, volume 10
    assert ex.fetch_order(order["id"], SYMBOL)["status"] == "closed"


def test_fetch_order_by_client_order_id(ex: ccxt.binance) -> None:
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "kestrel-42"})
    assert order["clientOrderId"] == "kestrel-42"
    by_client = ex.fetch_order("", SYMBOL, {"clientOrderId": "kestrel-42"})
    assert by_client["id"] == order["id"]
    by_orig = ex.fetch_order("", SYMBOL, {"origClientOrderId": "kestrel-42"})
    assert by_orig["id"] == order["id"]
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("", SYMBOL, {"clientOrderId": "nope"})


def test_order_ids_are_deterministic(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    a = ex.create_order(SYMBOL, "limit", "buy", 0.1, 97)
    b = ex.create_order(SYMBOL, "market", "buy", 0.1)
    assert (a["id"], b["id"]) == ("1", "2")
    assert b["trades"][0]["id"] == "1"
    # ccxt always sends a (random) newClientOrderId; without one the emulator makes its own.
    new = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}
    status, raw, _ = raw_request(emu, "POST", "/api/v3/order", new)
    assert status == 200
    assert (raw["orderId"], raw["clientOrderId"]) == (3, "emu0000000000000000003")


def test_fetch_orders_closed_orders_and_open_orders(ex: ccxt.binance) -> None:
    resting = ex.create_order(SYMBOL, "limit", "buy", 1, 97)
    filled = ex.create_order(SYMBOL, "market", "buy", 0.1)
    canceled = ex.create_order(SYMBOL, "limit", "sell", 1, 120)
    ex.cancel_order(canceled["id"], SYMBOL)
    everything = ex.fetch_orders(SYMBOL)
    assert [(o["id"], o["status"]) for o in everything] == [
        (resting["id"], "open"),
        (filled["id"], "closed"),
        (canceled["id"], "canceled"),
    ]
    assert [o["id"] for o in ex.fetch_closed_orders(SYMBOL)] == [filled["id"]]
    assert [o["id"] for o in ex.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert [o["id"] for o in ex.fetch_open_orders()] == [resting["id"]]
    assert [o["id"] for o in ex.fetch_orders(SYMBOL, limit=1)] == [canceled["id"]]


def test_cancel_releases_funds_and_second_cancel_is_not_found(ex: ccxt.binance) -> None:
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "c-1"})
    canceled = ex.cancel_order(order["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == "c-1"
    assert balances(ex)["USDT"] == (Decimal("1000"), Decimal("0"))
    assert ex.fetch_order(order["id"], SYMBOL)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"], SYMBOL)


def test_cancel_by_client_order_id_and_cancel_all(ex: ccxt.binance) -> None:
    ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "c-2"})
    ex.create_order(SYMBOL, "limit", "buy", 1, 96)
    assert ex.cancel_order("", SYMBOL, {"clientOrderId": "c-2"})["status"] == "canceled"
    ex.create_order(SYMBOL, "limit", "sell", 1, 130)
    assert len(ex.cancel_all_orders(SYMBOL)) == 2
    assert ex.fetch_open_orders(SYMBOL) == []
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_all_orders(SYMBOL)


def test_stop_loss_triggers_on_a_later_candle(ex: ccxt.binance, emu: BinanceEmulator) -> None:
    order = ex.create_order(SYMBOL, "market", "sell", 1, None, {"stopLossPrice": 96})
    assert (order["info"]["type"], order["status"], order["triggerPrice"]) == (
        "STOP_LOSS",
        "open",
        96.0,
    )
    assert balances(ex)["BTC"] == (Decimal("1"), Decimal("1"))
    emu.advance()  # candle 1: low 98, not triggered
    assert ex.fetch_order(order["id"], SYMBOL)["info"]["isWorking"] is False
    emu.advance()  # candle 2: low 95 -> sells at the stop price
    done = ex.fetch_order(order["id"], SYMBOL)
    assert (done["status"], done["average"]) == ("closed", 96.0)
    assert balances(ex)["USDT"] == (Decimal("1000") + Decimal("96") - Decimal("0.096"), 0)


def test_take_profit_limit_becomes_a_limit_when_triggered(
    ex: ccxt.binance, emu: BinanceEmulator
) -> None:
    order = ex.create_order(SYMBOL, "limit", "sell", 1, 107, {"takeProfitPrice": 105})
    assert order["info"]["type"] == "TAKE_PROFIT_LIMIT"
    emu.advance(3)  # highs 102, 103, 97
    assert ex.fetch_order(order["id"], SYMBOL)["filled"] == 0.0
    emu.advance()  # candle 4 runs to 110: triggers at 105, fills at 107
    done = ex.fetch_order(order["id"], SYMBOL)
    assert (done["status"], done["average"], done["takeProfitPrice"]) == ("closed", 107.0, 105.0)


def test_stop_on_the_wrong_side_would_trigger_immediately(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        ex.create_order(SYMBOL, "market", "sell", 1, None, {"stopLossPrice": 101})
    assert balances(ex)["BTC"] == (Decimal("2"), Decimal("0"))


def test_post_only_that_would_take_is_rejected(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        ex.create_order(SYMBOL, "limit", "buy", 1, 101, {"postOnly": True})
    assert balances(ex)["USDT"] == (Decimal("1000"), Decimal("0"))
    maker = ex.create_order(SYMBOL, "limit", "buy", 1, 99, {"postOnly": True})
    assert (maker["status"], maker["postOnly"]) == ("open", True)
    assert maker["id"] == "1"  # the rejected order consumed no id


def test_ioc_that_cannot_fill_expires(ex: ccxt.binance) -> None:
    order = ex.create_order(SYMBOL, "limit", "buy", 1, 99, {"timeInForce": "IOC"})
    assert (order["status"], order["filled"]) == ("expired", 0.0)
    assert balances(ex)["USDT"] == (Decimal("1000"), Decimal("0"))


def test_filters_are_enforced(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        ex.create_order(SYMBOL, "limit", "buy", 0.01, 97)  # 0.97 USDT < 5
    base: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}
    base["timeInForce"] = "GTC"
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        ex.private_post_order({**base, "quantity": "1", "price": "97.005"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        ex.private_post_order({**base, "quantity": "1.0005", "price": "97"})
    with pytest.raises(ccxt.BadRequest, match="-1102"):
        ex.private_post_order({**base, "quantity": "1"})


def test_balance_reconciles_exactly_with_trades(partial_emu: BinanceEmulator) -> None:
    ex = partial_emu.ccxt_client(timeout_ms=2000)
    start = balances(ex)
    ex.create_order(SYMBOL, "market", "buy", 0.5)
    sell = ex.create_order(SYMBOL, "limit", "sell", 1, 105)
    buy = ex.create_order(SYMBOL, "limit", "buy", 1, 97)
    partial_emu.advance(4)  # buy fills 0.4 + 0.4 + 0.2; sell fills 0.4 on candle 4
    ex.cancel_order(sell["id"], SYMBOL)
    assert ex.fetch_order(buy["id"], SYMBOL)["status"] == "closed"
    usdt, btc = start["USDT"][0], start["BTC"][0]
    for t in ex.fetch_my_trades(SYMBOL):
        info = t["info"]
        qty, quote, fee = (Decimal(info[k]) for k in ("qty", "quoteQty", "commission"))
        if info["isBuyer"]:
            assert info["commissionAsset"] == "BTC"
            usdt, btc = usdt - quote, btc + qty - fee
        else:
            assert info["commissionAsset"] == "USDT"
            usdt, btc = usdt + quote - fee, btc - qty
    assert balances(ex)["USDT"] == (usdt, Decimal("0"))
    assert balances(ex)["BTC"] == (btc, Decimal("0"))
    assert len(ex.fetch_my_trades(SYMBOL)) == 5


def test_accounts_are_isolated(make_emulator: MakeEmulator) -> None:
    other = AccountConfig(api_key="other", secret="other-secret", balances={"USDT": Decimal(50)})
    emu = make_emulator(accounts=[account(), other])
    mine, theirs = emu.ccxt_client(timeout_ms=2000), emu.ccxt_client("other", timeout_ms=2000)
    order = mine.create_order(SYMBOL, "limit", "buy", 1, 97)
    assert theirs.fetch_open_orders(SYMBOL) == []
    with pytest.raises(ccxt.OrderNotFound):
        theirs.fetch_order(order["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        theirs.cancel_order(order["id"], SYMBOL)
    assert theirs.fetch_balance()["USDT"]["free"] == 50.0


def test_concurrent_clients_keep_balances_consistent(emu: BinanceEmulator) -> None:
    def buy_ten(_: int) -> int:
        client = emu.ccxt_client(timeout_ms=5000)
        for _ in range(10):
            client.create_order(SYMBOL, "market", "buy", 0.1)
        return 10

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(buy_ten, range(4))) == 40
    emu.advance()
    assert emu.balance("USDT") == (Decimal("600"), Decimal("0"))  # 40 x 0.1 x 100
    assert emu.balance("BTC") == (Decimal("2") + 40 * Decimal("0.0999"), Decimal("0"))
