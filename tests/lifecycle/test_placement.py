"""Placing orders through real ccxt against the emulator: fills, precision, minimums,
rejections, and every fault on the way (exactly one order per intent, whatever happens)."""

from __future__ import annotations

import time
from decimal import Decimal

import ccxt
import pytest

from emulator import MarketConfig
from kestrel.errors import OrderOutcomeUnknown, SecurityError
from kestrel.exchange.errors import is_transient
from kestrel.execution.orders import RECENT_TRADES, place
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, OrderStatus, OrderType, PositionStatus, StatusSource
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import HOUR, SYMBOL, World, rows

SPEC = {"tick_size": Decimal("0.01"), "step_size": Decimal("0.001"), "min_notional": Decimal("5")}


def event_types(world: World) -> list[EventType]:
    return [e.type for e in world.store.list_events()]


def test_market_buy_fills_at_once_with_its_fill_and_position(world: World) -> None:
    order = place(world.store, world.exchange, intent("m1"))
    assert (order.status, order.status_source) == (OrderStatus.FILLED, StatusSource.CREATE_RESPONSE)
    assert (order.filled, order.average_price) == (Decimal("0.5"), Decimal("100"))
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.0005"), "BTC")
    [fill] = world.store.list_fills(client_order_id=order.client_order_id)
    assert (fill.amount, fill.price) == (Decimal("0.5"), Decimal("100"))
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.4995")  # fee taken in BTC
    assert event_types(world) == [
        EventType.POSITION_OPENED,
        EventType.ORDER_CREATED,
        EventType.ORDER_EXECUTED,
    ]
    assert world.posts() == 1
    assert place(world.store, world.exchange, intent("m1")).version == order.version
    assert world.posts() == 1  # placing the same intent again is a no-op


def test_limit_order_is_rounded_to_the_market_and_rests(world: World) -> None:
    """A buy limit rounds DOWN to the tick (97.126 -> 97.12, never above what was asked)."""
    order = place(
        world.store,
        world.exchange,
        intent("l1", "0.12345", type=OrderType.LIMIT, price="97.126"),
    )
    assert (order.amount, order.price, order.status) == (
        Decimal("0.123"),
        Decimal("97.12"),
        OrderStatus.OPEN,
    )
    [remote] = world.orders_on_exchange(order.client_order_id)
    assert (remote.orig_qty, remote.price, remote.status) == (
        Decimal("0.123"),
        Decimal("97.12"),
        "NEW",
    )


@pytest.mark.parametrize(
    ("amount", "complaint"),
    [("0.04", "minimum notional"), ("0.0004", "minimum amount is")],
)
def test_orders_below_the_minimums_are_refused_without_a_request(
    world: World, amount: str, complaint: str
) -> None:
    order = place(world.store, world.exchange, intent(f"small-{amount}", amount))
    assert (order.status, order.status_source) == (OrderStatus.REJECTED, StatusSource.PRE_CHECK)
    assert complaint in (order.reason or "")
    assert world.posts() == 0
    assert event_types(world) == [EventType.ORDER_REJECTED]


def test_an_exchange_rejection_is_final(world: World) -> None:
    order = place(world.store, world.exchange, intent("broke", "500"))
    assert (order.status, order.status_source) == (
        OrderStatus.REJECTED,
        StatusSource.CREATE_RESPONSE,
    )
    assert "insufficient balance" in (order.reason or "")
    place(world.store, world.exchange, intent("broke", "500"))
    assert world.posts() == 1
    assert world.store.open_position(SYMBOL) is None


@pytest.mark.parametrize("fault", ["timeout", "drop", "http_error", "rate_limit"])
def test_a_request_that_never_reached_the_exchange_is_sent_again_once(
    world: World, fault: str
) -> None:
    getattr(world.emu.faults, fault)(path="/api/v3/order", method="POST")
    with pytest.raises(ccxt.NetworkError) as raised:
        place(world.store, world.exchange, intent("t1"))
    assert is_transient(raised.value)
    stored = world.store.get_order(intent("t1").client_order_id)
    assert stored is not None and (stored.status, stored.send_attempts) == (OrderStatus.NEW, 1)
    assert world.orders_on_exchange() == []
    order = place(world.store, world.exchange, intent("t1"))  # the retry
    assert order.status is OrderStatus.FILLED
    assert len(world.orders_on_exchange(order.client_order_id)) == 1
    assert world.posts() == 2


@pytest.mark.parametrize("how", ["drop", "http_error", "timeout"])
def test_an_order_whose_reply_was_lost_is_found_not_sent_again(world: World, how: str) -> None:
    world.emu.faults.lose_response(how=how, hang_s=3)  # type: ignore[arg-type]
    limit = intent("lost", "1", type=OrderType.LIMIT, price="97")
    with pytest.raises(ccxt.NetworkError):
        place(world.store, world.exchange, limit)
    assert len(world.orders_on_exchange(limit.client_order_id)) == 1
    order = place(world.store, world.exchange, limit)
    assert (order.status, order.status_source) == (OrderStatus.OPEN, StatusSource.ORDER_HISTORY)
    assert order.exchange_order_id == "1"
    assert world.posts() == 1


def test_a_lost_filled_order_hidden_by_eventual_consistency_is_never_sent_twice(
    world: World,
) -> None:
    """Binance lets a FILLED order's client id be reused, and hides just-closed orders from
    queries for a while: a blind resend here would buy twice. The unattributed trade stops it."""
    world.emu.set_visibility_lag(queries=3)
    world.emu.faults.lose_response(how="http_error", status=502)
    buy = intent("hidden")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        place(world.store, world.exchange, buy)
    with pytest.raises(OrderOutcomeUnknown):
        place(world.store, world.exchange, buy)  # lookups 1-2 hidden; a trade is not ours
    order = place(world.store, world.exchange, buy)  # lookup 4 sees it
    assert (order.status, order.status_source) == (OrderStatus.FILLED, StatusSource.ORDER_HISTORY)
    assert len(world.orders_on_exchange(buy.client_order_id)) == 1
    assert world.posts() == 1
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.4995")


def test_a_fault_on_the_lookup_never_leads_to_a_send(world: World) -> None:
    world.emu.faults.lose_response(how="drop")
    limit = intent("lookup", "1", type=OrderType.LIMIT, price="97")
    with pytest.raises(ccxt.NetworkError):
        place(world.store, world.exchange, limit)
    world.emu.faults.http_error(status=503, path="/api/v3/order", method="GET")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        place(world.store, world.exchange, limit)
    world.emu.faults.rate_limit(path="/api/v3/order", method="GET")
    with pytest.raises(ccxt.DDoSProtection):
        place(world.store, world.exchange, limit)
    assert world.posts() == 1
    assert place(world.store, world.exchange, limit).status is OrderStatus.OPEN
    assert world.posts() == 1


def test_a_duplicate_reply_is_resolved_by_lookup(world: World) -> None:
    limit = intent("dup", "1", type=OrderType.LIMIT, price="97")
    world.exchange.client.create_order(
        SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": limit.client_order_id}
    )
    world.store.insert_order(limit)  # an intent whose send was never counted
    order = place(world.store, world.exchange, limit)
    assert (order.status, order.status_source) == (OrderStatus.OPEN, StatusSource.ORDER_HISTORY)
    assert len(world.orders_on_exchange(limit.client_order_id)) == 1


def test_a_real_wallet_in_a_demo_run_places_nothing(world: World) -> None:
    with trading_mode(TradingMode.DEMO), pytest.raises(SecurityError):
        place(world.store, world.exchange, intent("wrong", mode=TradingMode.DEMO))
    with pytest.raises(SecurityError):
        place(world.store, world.exchange, intent("wrong2", mode=TradingMode.DEMO))
    assert world.posts() == 0
    assert world.store.list_orders() == []
    kinds = {e.type for e in world.store.list_events()}
    assert kinds == {EventType.SECURITY}


def test_positions_close_with_realized_pnl_and_fees(world: World) -> None:
    from kestrel.models import Side

    usdt_before = Decimal(str(world.exchange.fetch_balance()["USDT"]["total"]))
    place(world.store, world.exchange, intent("rt-buy", "1"))
    world.emu.advance(4)  # price 108
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.999")
    # 100 USDT paid for the 0.999 BTC held: the fee taken in BTC is in the entry price
    assert position.avg_entry_price * position.amount == Decimal("100")
    sold = place(
        world.store, world.exchange, intent("rt-sell", "0.999", side=Side.SELL, reference="108")
    )
    assert sold.status is OrderStatus.FILLED
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    # By hand: paid 100 USDT for 0.999 BTC (0.001 BTC fee), sold 0.999 at 108 = 107.892 USDT
    # less a 0.107892 USDT fee: the wallet gained 7.784108 USDT. Gross PnL 107.892 - 100 (the
    # BTC fee is in that cost); fees counted once: the sell's 0.107892 USDT only.
    assert closed.realized_pnl == Decimal("7.892")
    assert closed.fees == {"BTC": Decimal("0.001"), "USDT": Decimal("0.107892")}
    assert closed.fees_paid == Decimal("0.107892")
    usdt_after = Decimal(str(world.exchange.fetch_balance()["USDT"]["total"]))
    assert usdt_after - usdt_before == Decimal("7.784108")
    assert closed.realized_pnl - closed.fees_paid == usdt_after - usdt_before


def test_a_hidden_order_is_found_behind_more_than_a_page_of_newer_trades(
    make_world: MakeWorld,
) -> None:
    """The same eventual-consistency case on a busy symbol: more than one page of trades came
    after the lost order, so its trade is found by paging back (ccxt `since`) to its creation.
    The candles are dated an hour ahead of the wall clock, so exchange time is past our clock
    as on a live exchange (the default world replays 2023)."""
    start = (int(time.time() * 1000) // HOUR + 1) * HOUR
    candles = [[start + i * HOUR, *row[1:]] for i, row in enumerate(rows())]
    world = make_world(markets=[MarketConfig(symbol=SYMBOL, candles=candles, **SPEC)])
    world.emu.set_visibility_lag(queries=1)
    world.emu.faults.lose_response(how="http_error", status=502)
    buy = intent("busy-hidden", "0.1")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        place(world.store, world.exchange, buy)
    for n in range(RECENT_TRADES):  # a page of newer trades, all of orders the store knows
        assert place(world.store, world.exchange, intent(f"busy-{n}", "0.1")).filled
    order = place(world.store, world.exchange, buy)  # lookup 1 hidden; its trade is found
    assert (order.status, order.status_source) == (OrderStatus.FILLED, StatusSource.ORDER_HISTORY)
    assert len(world.orders_on_exchange(buy.client_order_id)) == 1
    assert world.posts() == RECENT_TRADES + 1
