"""Order sync through real ccxt against the emulator: only confirmed states change a record,
partial fills are recorded fill by fill, faults change nothing, and the number of requests
follows the symbols with live orders plus the orders that vanished, not the number of orders."""

from __future__ import annotations

import contextvars
import threading
from datetime import timedelta
from decimal import Decimal

import ccxt
import pytest

from emulator import FillPolicy
from kestrel.books.wallet import build_exchange
from kestrel.execution.orders import cancel, place
from kestrel.execution.sync import sync_orders
from kestrel.mode import TradingMode
from kestrel.models import EventType, Order, OrderStatus, OrderType, StatusSource, utcnow
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World, account, credentials, market, real_settings


def events(world: World, kind: EventType) -> list[str]:
    return [e.event_id for e in world.store.list_events(types=[kind])]


def resting(world: World, tag: str, amount: str = "1", price: str = "97") -> str:
    limit = intent(tag, amount, type=OrderType.LIMIT, price=price)
    order = place(world.store, world.exchange, limit)
    assert order.status is OrderStatus.OPEN
    return order.client_order_id


def test_partial_fills_are_recorded_fill_by_fill_and_positions_follow(
    make_world: MakeWorld,
) -> None:
    world = make_world(fill_policy=FillPolicy(max_fill_qty_per_candle=Decimal("0.4")))
    cid = resting(world, "partial")
    expected = [
        (OrderStatus.PARTIALLY_FILLED, "0.4", StatusSource.OPEN_ORDERS, "0.3996"),
        (OrderStatus.PARTIALLY_FILLED, "0.8", StatusSource.OPEN_ORDERS, "0.7992"),
        (OrderStatus.FILLED, "1", StatusSource.ORDER_HISTORY, "0.999"),
    ]
    world.emu.advance()  # candle 1 does not reach 97
    assert sync_orders(world.store, world.exchange).changed == {}
    for status, filled, source, held in expected:
        world.emu.advance()  # candles 2, 3, 4 each fill at most 0.4
        report = sync_orders(world.store, world.exchange)
        order = world.store.get_order(cid)
        assert order is not None
        assert (order.status, order.filled, order.status_source) == (
            status,
            Decimal(filled),
            source,
        )
        assert report.changed == {cid: status.value}
        position = world.store.open_position(SYMBOL)
        assert position is not None and position.amount == Decimal(held)
    fills = world.store.list_fills(client_order_id=cid)
    assert [f.amount for f in fills] == [Decimal("0.4"), Decimal("0.4"), Decimal("0.2")]
    assert events(world, EventType.ORDER_PARTIALLY_FILLED) == [
        f"{cid}:PARTIALLY_FILLED:0.4",
        f"{cid}:PARTIALLY_FILLED:0.8",
    ]
    assert events(world, EventType.ORDER_EXECUTED) == [f"{cid}:FILLED"]


def test_a_filled_order_hidden_from_order_history_is_confirmed_by_its_trades(
    world: World,
) -> None:
    cid = resting(world, "hidden")
    world.emu.set_visibility_lag(queries=10)
    world.emu.advance(2)  # candle 2 dips to 95: filled, then hidden from order queries
    report = sync_orders(world.store, world.exchange)
    order = world.store.get_order(cid)
    assert order is not None
    assert (order.status, order.status_source, order.filled) == (
        OrderStatus.FILLED,
        StatusSource.TRADE_HISTORY,
        Decimal("1"),
    )
    assert report.changed == {cid: "FILLED"}
    assert events(world, EventType.ORDER_EXECUTED) == [f"{cid}:FILLED"]


def test_a_missing_order_is_never_marked_canceled_until_the_exchange_confirms_it(
    make_world: MakeWorld,
) -> None:
    world = make_world(fill_policy=FillPolicy(max_fill_qty_per_candle=Decimal("0.4")))
    cid = resting(world, "gone")
    world.emu.advance(2)  # 0.4 of 1 filled
    world.emu.set_visibility_lag(queries=2)
    order = world.store.get_order(cid)
    assert order is not None and order.exchange_order_id is not None
    world.exchange.client.cancel_order(order.exchange_order_id, SYMBOL)  # by hand, elsewhere
    first = sync_orders(world.store, world.exchange)  # open: gone; order: hidden; trades: 0.4
    order = world.store.get_order(cid)
    assert order is not None
    assert (order.status, order.filled, order.status_source) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal("0.4"),
        StatusSource.TRADE_HISTORY,
    )
    assert first.unresolved == [cid]
    assert events(world, EventType.ORDER_CANCELED) == []
    sync_orders(world.store, world.exchange)  # second hidden query
    assert events(world, EventType.ORDER_CANCELED) == []
    sync_orders(world.store, world.exchange)  # now visible: CANCELED, confirmed
    order = world.store.get_order(cid)
    assert order is not None
    assert (order.status, order.filled, order.status_source) == (
        OrderStatus.CANCELED,
        Decimal("0.4"),
        StatusSource.ORDER_HISTORY,
    )
    assert events(world, EventType.ORDER_CANCELED) == [f"{cid}:CANCELED"]
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.3996")


def test_cancel_records_the_confirmed_outcome(world: World) -> None:
    cid = resting(world, "cancel-me")
    order = world.store.get_order(cid)
    assert order is not None
    done = cancel(world.store, world.exchange, order, "changed my mind")
    assert (done.status, done.status_source, done.cancel_reason) == (
        OrderStatus.CANCELED,
        StatusSource.CANCEL_RESPONSE,
        "changed my mind",
    )
    assert cancel(world.store, world.exchange, done, "again").version == done.version
    assert world.emu.request_count("/api/v3/order", "DELETE") == 1
    [event] = world.store.list_events(types=[EventType.ORDER_CANCELED])
    assert "changed my mind" in event.message


def test_cancel_of_an_order_that_filled_meanwhile_records_the_fill(world: World) -> None:
    cid = resting(world, "too-late")
    world.emu.advance(2)  # filled on the exchange; the store does not know yet
    order = world.store.get_order(cid)
    assert order is not None
    done = cancel(world.store, world.exchange, order, "too late")
    assert (done.status, done.status_source) == (OrderStatus.FILLED, StatusSource.ORDER_HISTORY)
    assert len(world.store.list_fills(client_order_id=cid)) == 1


def test_cancel_of_an_intent_never_sent_needs_no_request(world: World) -> None:
    stored = world.store.insert_order(intent("never"))
    done = cancel(world.store, world.exchange, stored, "not needed")
    assert (done.status, done.status_source) == (OrderStatus.CANCELED, StatusSource.PRE_CHECK)
    assert world.emu.request_count() == 0


@pytest.mark.parametrize("fault", ["timeout", "drop", "http_error", "rate_limit"])
def test_faults_during_sync_change_nothing(world: World, fault: str) -> None:
    cid = resting(world, "steady")
    world.emu.advance(2)  # it fills on the exchange
    getattr(world.emu.faults, fault)(path="/api/v3/openOrders")
    report = sync_orders(world.store, world.exchange)
    assert list(report.errors) == [SYMBOL]
    order = world.store.get_order(cid)
    assert order is not None and order.status is OrderStatus.OPEN
    getattr(world.emu.faults, fault)(path="/api/v3/order", method="GET")
    report = sync_orders(world.store, world.exchange)  # open orders: gone; lookup fails
    order = world.store.get_order(cid)
    assert order is not None and order.status is OrderStatus.OPEN
    assert list(report.errors) == [SYMBOL]
    sync_orders(world.store, world.exchange)
    order = world.store.get_order(cid)
    assert order is not None and order.status is OrderStatus.FILLED


def test_a_lost_placement_is_resolved_by_sync_without_a_second_order(world: World) -> None:
    world.emu.faults.lose_response(how="drop")
    buy = intent("orphan")
    with pytest.raises(ccxt.NetworkError):
        place(world.store, world.exchange, buy)
    report = sync_orders(world.store, world.exchange)
    order = world.store.get_order(buy.client_order_id)
    assert order is not None
    assert (order.status, order.status_source) == (OrderStatus.FILLED, StatusSource.ORDER_HISTORY)
    assert report.changed == {buy.client_order_id: "FILLED"}
    assert world.posts() == 1


def test_an_intent_the_exchange_never_saw_fails_only_after_the_grace(world: World) -> None:
    young = world.store.insert_order(intent("young"))
    then = utcnow() - timedelta(minutes=10)  # stored, and last touched, 10 minutes ago
    old = world.store.insert_order(
        intent("old").model_copy(update={"created_at": then, "updated_at": then})
    )
    report = sync_orders(world.store, world.exchange, intent_grace_s=300)
    assert report.unresolved == [young.client_order_id]
    assert report.changed == {old.client_order_id: "FAILED"}
    failed = world.store.get_order(old.client_order_id)
    assert failed is not None and failed.status is OrderStatus.FAILED
    assert events(world, EventType.ORDER_FAILED) == [f"{old.client_order_id}:FAILED"]
    assert world.posts() == 0


SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT"]


def test_requests_grow_with_symbols_and_vanished_orders_not_with_orders(
    make_world: MakeWorld,
) -> None:
    world = make_world(
        markets=[market(s, Decimal(i + 1)) for i, s in enumerate(SYMBOLS)],
        accounts=[account("100000")],
    )
    per_symbol = 40
    for i, symbol in enumerate(SYMBOLS):
        for n in range(per_symbol):
            price = str(50 * (i + 1))
            place(
                world.store,
                world.exchange,
                intent(f"{symbol}-{n}", "0.1", type=OrderType.LIMIT, price=price, symbol=symbol),
            )
    live = world.store.list_orders(statuses=[OrderStatus.OPEN])
    assert len(live) == per_symbol * len(SYMBOLS)

    world.emu.reset_request_counts()
    report = sync_orders(world.store, world.exchange)
    assert report.checked == 200 and report.changed == {}
    assert world.emu.request_counts() == {"GET /api/v3/openOrders": len(SYMBOLS)}

    vanished = [live[0], live[41], live[199]]  # canceled by hand on three symbols
    for order in vanished:
        world.exchange.client.cancel_order(order.exchange_order_id, order.symbol)
    world.emu.reset_request_counts()
    report = sync_orders(world.store, world.exchange)
    assert sorted(report.changed) == sorted(o.client_order_id for o in vanished)
    total = world.emu.request_count()
    assert total <= len(SYMBOLS) + 3 * len(vanished)
    assert world.emu.request_counts() == {
        "GET /api/v3/openOrders": len(SYMBOLS),
        "GET /api/v3/order": len(vanished),
    }


class Placement:
    """`place()` running in its own thread, store connection and ccxt client, as the position
    monitor's deployment does while order sync runs."""

    def __init__(self, world: World, order: Order) -> None:
        settings = real_settings(world.emu.url, world.settings.data_dir, access={"timeout_s": 60})
        self.store = SQLiteStore(world.store_path, TradingMode.REAL)
        self.exchange = build_exchange(settings, self.store, credentials=credentials())
        self.exchange.load_markets()
        self.outcome: list[Order | Exception] = []
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, order), daemon=True)
        self.thread.start()

    def _run(self, order: Order) -> None:
        try:
            self.outcome.append(place(self.store, self.exchange, order))
        except Exception as exc:
            self.outcome.append(exc)

    def join(self) -> list[Order | Exception]:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the placement did not finish"
        self.store.close()
        return self.outcome


def test_a_send_answered_after_the_grace_still_lands_its_fill_and_position(world: World) -> None:
    gate = world.emu.faults.hold(path="/api/v3/order", method="POST")
    buy = intent("slow", "0.5")
    cid = buy.client_order_id
    placing = Placement(world, buy)
    assert gate.arrived.wait(timeout=30), "the order never reached the exchange"
    for _ in range(2):  # the grace since the send has passed; the exchange has not answered
        report = sync_orders(world.store, world.exchange, intent_grace_s=0)
        assert report.unresolved == [cid]
        order = world.store.get_order(cid)
        assert order is not None
        assert (order.status, order.status_source) == (
            OrderStatus.UNKNOWN,
            StatusSource.SYNC_GRACE,
        )
    gate.open()  # the exchange answers at last: filled
    placing.join()
    sync_orders(world.store, world.exchange, intent_grace_s=0)
    order = world.store.get_order(cid)
    assert order is not None
    assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal("0.5"))
    [fill] = world.store.list_fills(client_order_id=cid)
    assert fill.amount == Decimal("0.5")
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.4995")
    assert events(world, EventType.ALERT_EMITTED) == [f"{cid}:UNKNOWN"]
    assert events(world, EventType.ORDER_EXECUTED) == [f"{cid}:FILLED"]
    assert world.posts() == 1


def test_a_send_that_may_have_arrived_is_never_failed_nor_resent(world: World) -> None:
    world.emu.faults.drop(path="/api/v3/order", method="POST")  # no answer: did it arrive?
    buy = intent("no-answer", "0.5")
    cid = buy.client_order_id
    with pytest.raises(ccxt.NetworkError):
        place(world.store, world.exchange, buy)
    young = sync_orders(world.store, world.exchange, intent_grace_s=300)
    order = world.store.get_order(cid)
    assert order is not None and order.status is OrderStatus.NEW
    assert young.unresolved == [cid]
    for _ in range(3):  # past the grace: UNKNOWN, asked again on every pass, alerted once
        report = sync_orders(world.store, world.exchange, intent_grace_s=0)
        assert report.unresolved == [cid]
        assert place(world.store, world.exchange, buy).status is OrderStatus.UNKNOWN
    assert world.posts() == 1
    assert world.emu.request_count("/api/v3/order", "GET") == 4  # by client order id, each pass
    assert events(world, EventType.ALERT_EMITTED) == [f"{cid}:UNKNOWN"]
    assert events(world, EventType.ORDER_FAILED) == []


def test_an_order_with_an_unknown_status_does_not_stop_the_others(world: World) -> None:
    odd = resting(world, "odd-status", "0.1", price="50")  # rests far below the market
    healthy = resting(world, "healthy", "0.1", price="97")
    world.emu.advance(2)  # the dip to 95 fills the healthy one; the odd one still rests
    world.emu.faults.tamper(
        {"status": "PENDING_REVIEW"}, path="/api/v3/openOrders", method="GET", count=2
    )
    for _ in range(2):
        report = sync_orders(world.store, world.exchange)
        assert report.errors == {}
        assert list(report.quarantined) == [odd]
        assert "PENDING_REVIEW" in report.quarantined[odd]
    done = world.store.get_order(healthy)
    assert done is not None and done.status is OrderStatus.FILLED
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.0999")
    kept = world.store.get_order(odd)
    assert kept is not None and kept.status is OrderStatus.OPEN
    [alert] = world.store.list_events(types=[EventType.ALERT_EMITTED])
    assert alert.client_order_id == odd and "PENDING_REVIEW" in alert.message
    assert sync_orders(world.store, world.exchange).quarantined == {}  # the reply is sane again


def test_a_create_reply_naming_another_order_is_not_linked(world: World) -> None:
    theirs = world.exchange.client.create_order(
        SYMBOL, "limit", "buy", 0.1, 50, {"clientOrderId": "someone-elses-order"}
    )
    world.emu.faults.tamper(
        {"orderId": int(theirs["id"]), "clientOrderId": "someone-elses-order"},
        path="/api/v3/order",
        method="POST",
    )
    buy = intent("foreign-reply", "0.5")
    placed = place(world.store, world.exchange, buy)
    [mine] = world.orders_on_exchange(buy.client_order_id)
    assert placed.exchange_order_id == str(mine.order_id) != theirs["id"]
    assert (placed.status, placed.filled) == (OrderStatus.FILLED, Decimal("0.5"))
    [fill] = world.store.list_fills(client_order_id=buy.client_order_id)
    assert fill.exchange_order_id == str(mine.order_id)
    [alert] = world.store.list_events(types=[EventType.ALERT_EMITTED])
    assert theirs["id"] in alert.message and "someone-elses-order" in alert.message
    assert [o.exchange_order_id for o in world.store.list_orders()] == [str(mine.order_id)]
    report = sync_orders(world.store, world.exchange)
    assert (report.errors, report.changed) == ({}, {})


def test_vanished_orders_share_one_trades_request_per_symbol(make_world: MakeWorld) -> None:
    """Filled orders are attributed from one read of their symbol's trades (by exchange order
    id), not one trade-history request per order; every fill still lands."""
    world = make_world(markets=[market(s, Decimal(i + 1)) for i, s in enumerate(SYMBOLS[:2])])
    placed = [
        place(
            world.store,
            world.exchange,
            intent(f"{s}-{n}", "0.1", type=OrderType.LIMIT, price=str(97 * (i + 1)), symbol=s),
        )
        for i, s in enumerate(SYMBOLS[:2])
        for n in range(4)
    ]
    world.emu.advance(2)  # dips to 95 (x2 on ETH): every resting buy fills
    world.emu.reset_request_counts()
    report = sync_orders(world.store, world.exchange)
    assert sorted(report.changed) == sorted(o.client_order_id for o in placed)
    assert world.emu.request_counts() == {
        "GET /api/v3/openOrders": 2,
        "GET /api/v3/order": len(placed),  # never assumed: each is confirmed FILLED
        "GET /api/v3/myTrades": 2,  # one per symbol, not one per order
    }
    for order in placed:
        done = world.store.get_order(order.client_order_id)
        assert done is not None and (done.status, done.filled) == (
            OrderStatus.FILLED,
            Decimal("0.1"),
        )
        assert done.exchange_order_id is not None
        [fill] = world.store.list_fills(client_order_id=order.client_order_id)
        assert world.trades_on_exchange(int(done.exchange_order_id)) == 1
        assert fill.amount == Decimal("0.1")


def test_hidden_fills_of_one_symbol_are_confirmed_from_one_trades_request(world: World) -> None:
    cids = [resting(world, f"hidden-{n}", "0.2") for n in range(3)]
    world.emu.set_visibility_lag(queries=10)
    world.emu.advance(2)  # filled, then hidden from order queries
    world.emu.reset_request_counts()
    report = sync_orders(world.store, world.exchange)
    assert report.changed == dict.fromkeys(cids, "FILLED")
    for cid in cids:
        order = world.store.get_order(cid)
        assert order is not None
        assert (order.status, order.status_source) == (
            OrderStatus.FILLED,
            StatusSource.TRADE_HISTORY,
        )
    assert world.emu.request_count("/api/v3/myTrades") == 1


def test_a_trade_of_an_order_the_store_cannot_link_is_still_found(world: World) -> None:
    """Sent, reply lost, and the exchange hides the order: its trade shows in the symbol's
    trades under an exchange order id we do not know, so it is never resent nor failed."""
    world.emu.set_visibility_lag(queries=2)
    world.emu.faults.lose_response(how="drop")
    buy = intent("unlinked", "0.5")
    with pytest.raises(ccxt.NetworkError):
        place(world.store, world.exchange, buy)
    world.emu.reset_request_counts()
    first = sync_orders(world.store, world.exchange, intent_grace_s=0)
    assert first.unresolved == [buy.client_order_id]
    assert world.emu.request_count("/api/v3/myTrades") == 1
    order = world.store.get_order(buy.client_order_id)
    assert order is not None and order.status is OrderStatus.NEW  # neither UNKNOWN nor FAILED
    sync_orders(world.store, world.exchange, intent_grace_s=0)  # visible now
    order = world.store.get_order(buy.client_order_id)
    assert order is not None and (order.status, order.filled) == (
        OrderStatus.FILLED,
        Decimal("0.5"),
    )
    assert len(world.orders_on_exchange(buy.client_order_id)) == 1
    assert world.posts() == 0 and len(world.store.list_fills()) == 1  # nothing sent by sync
