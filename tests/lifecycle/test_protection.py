"""Stop-loss / take-profit after a primary fill, OCO, the position monitor, daily PnL:
through real ccxt against the emulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import FillPolicy
from kestrel.books.ledger import daily_pnl, fill_day
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.models import (
    EventType,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionStatus,
    Side,
    StatusSource,
)
from kestrel.runtime import Runtime
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World, market

NATIVE = ProtectionPolicy()


def runtime(world: World) -> Runtime:
    return Runtime(settings=world.settings, store=world.store, exchange=world.exchange)


def stops(world: World) -> list[Order]:
    return world.store.list_orders(roles=[OrderRole.STOP_LOSS])


def kinds(world: World, *types: EventType) -> list[str]:
    return [e.event_id for e in world.store.list_events(types=list(types))]


def bought(world: World, sl: str | None = "85", tp: str | None = "105", amount: str = "1") -> Order:
    entry = intent("entry", amount, stop_loss=sl, take_profit=tp)
    order = place(world.store, world.exchange, entry)
    assert order.status is OrderStatus.FILLED
    return order


def test_a_filled_primary_gets_a_native_stop_loss_once(world: World) -> None:
    bought(world, sl="85")
    report = protect_positions(world.store, world.exchange, NATIVE)
    [stop] = stops(world)
    assert (stop.status, stop.side, stop.amount, stop.stop_price) == (
        OrderStatus.OPEN,
        Side.SELL,
        Decimal("0.999"),  # what the position holds after the fee in BTC
        Decimal("85"),
    )
    [remote] = world.orders_on_exchange(stop.client_order_id)
    assert (remote.type, remote.stop_price, remote.orig_qty) == (
        "STOP_LOSS",
        Decimal("85"),
        Decimal("0.999"),
    )
    assert report.created == [stop.client_order_id]
    [created] = world.store.list_events(types=[EventType.SLTP_CREATED])
    assert "take-profit 105 watched by the position monitor" in created.message
    world.emu.reset_request_counts()
    again = protect_positions(world.store, world.exchange, NATIVE)
    assert again.created == [] and len(stops(world)) == 1
    assert world.emu.request_count() == 0


def test_a_limit_primary_is_protected_when_sync_sees_it_fill(make_world: MakeWorld) -> None:
    world = make_world(fill_policy=FillPolicy(max_fill_qty_per_candle=Decimal("0.4")))
    place(
        world.store,
        world.exchange,
        intent("limit-entry", "1", type=OrderType.LIMIT, price="97", stop_loss="80"),
    )
    assert protect_positions(world.store, world.exchange, NATIVE).protected == {}
    world.emu.advance(2)  # 0.4 filled: the 0.3996 held is protected at once
    sync_orders(world.store, world.exchange)
    protect_positions(world.store, world.exchange, NATIVE)
    [first] = stops(world)
    assert (first.amount, first.stop_price, first.status) == (
        Decimal("0.399"),
        Decimal("80"),
        OrderStatus.OPEN,
    )
    world.emu.advance(2)  # the rest fills: the stop follows the position
    sync_orders(world.store, world.exchange)
    protect_positions(world.store, world.exchange, NATIVE)
    first, second = stops(world)
    assert first.status is OrderStatus.CANCELED
    assert (second.amount, second.stop_price, second.status) == (
        Decimal("0.999"),
        Decimal("80"),
        OrderStatus.OPEN,
    )
    assert [o.status for o in world.orders_on_exchange()] == ["FILLED", "CANCELED", "NEW"]


def test_the_stop_loss_executes_and_the_position_closes_with_pnl_and_fees(world: World) -> None:
    bought(world, sl="97", tp="105")
    protect_positions(world.store, world.exchange, NATIVE)
    world.emu.advance(2)  # candle 2 dips to 95: the stop triggers at 97
    report = sync_orders(world.store, world.exchange)
    [stop] = stops(world)
    assert (stop.status, stop.status_source, stop.average_price) == (
        OrderStatus.FILLED,
        StatusSource.ORDER_HISTORY,
        Decimal("97"),
    )
    assert report.changed == {stop.client_order_id: "FILLED"}
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    # By hand: 100 USDT paid for 0.999 BTC (a 0.001 BTC fee), the stop sold them at 97 for
    # 96.903 USDT less a 0.096903 USDT fee: the wallet lost 3.193903 USDT. The books: gross
    # 96.903 - 100 (the BTC fee is in the cost), fees the sell's only: each counted once.
    assert closed.realized_pnl == Decimal("97") * Decimal("0.999") - Decimal("100")
    sell_fee = Decimal("97") * Decimal("0.999") * Decimal("0.001")
    assert closed.fees_paid == sell_fee
    assert closed.realized_pnl - closed.fees_paid == Decimal("-3.193903")
    # Daily PnL by the fills' exchange time: the buy on 2023-11-14, the stop the next day.
    [buy_fill, stop_fill] = world.store.list_fills()
    assert (fill_day(buy_fill), fill_day(stop_fill)) == ("2023-11-14", "2023-11-15")
    first, second = daily_pnl(world.store, "2023-11-14"), daily_pnl(world.store, "2023-11-15")
    assert first is not None and second is not None
    assert first["currencies"]["USDT"] == {  # the buy's BTC fee is in its cost, not a fee
        "realized_pnl": "0",
        "fees": "0",
        "net": "0",
        "unrealized_pnl": "0",
    }
    usdt = second["currencies"]["USDT"]
    assert Decimal(usdt["realized_pnl"]) == closed.realized_pnl
    assert Decimal(usdt["fees"]) == sell_fee
    assert Decimal(usdt["net"]) == closed.realized_pnl - sell_fee
    assert (second["fills"], second["positions_closed"]) == (1, 1)
    assert kinds(world, EventType.POSITION_CLOSED)
    assert monitor_positions(runtime(world)).marked == 0


def test_take_profit_cancels_the_stop_loss_then_sells(world: World) -> None:
    bought(world, sl="85", tp="105")
    protect_positions(world.store, world.exchange, NATIVE)
    rt = runtime(world)
    assert monitor_positions(rt).exits == {}
    world.emu.advance(4)  # rallies to 110, closes 108 >= 105
    report = monitor_positions(rt)
    assert report.exits == {SYMBOL: "TAKE_PROFIT_HIT: FILLED"}
    [stop] = stops(world)
    assert (stop.status, stop.status_source) == (
        OrderStatus.CANCELED,
        StatusSource.CANCEL_RESPONSE,
    )
    assert (stop.cancel_reason or "").startswith("superseded by exit")
    [exit_order] = world.store.list_orders(roles=[OrderRole.EXIT])
    assert (exit_order.status, exit_order.amount, exit_order.average_price) == (
        OrderStatus.FILLED,
        Decimal("0.999"),
        Decimal("108"),
    )
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl == Decimal("108") * Decimal("0.999") - Decimal("100")
    assert [o.status for o in world.orders_on_exchange()] == ["FILLED", "CANCELED", "FILLED"]
    assert protect_positions(world.store, world.exchange, NATIVE).released == []


def test_a_trailing_stop_exits_after_the_high(world: World) -> None:
    bought(world, sl="85", tp=None)
    position = world.store.open_position(SYMBOL)
    assert position is not None
    world.store.save_position(
        position.model_copy(update={"trailing_stop_pct": Decimal("0.05")}),
        expected_version=position.version,
    )
    protect_positions(world.store, world.exchange, NATIVE)
    rt = runtime(world)
    world.emu.advance(4)  # close 108: the new high
    assert monitor_positions(rt).exits == {}
    world.emu.advance(2)  # close 101 <= 108 x 0.95
    assert monitor_positions(rt).exits == {SYMBOL: "TRAILING_STOP_HIT: FILLED"}
    assert [o.status for o in stops(world)] == [OrderStatus.CANCELED]
    assert world.store.open_position(SYMBOL) is None


def test_a_strategy_exit_cancels_the_stop_loss_first(world: World) -> None:
    bought(world, sl="85")
    protect_positions(world.store, world.exchange, NATIVE)
    sell = place(world.store, world.exchange, intent("strategy-exit", "0.999", side=Side.SELL))
    assert sell.status is OrderStatus.FILLED
    assert [o.status for o in stops(world)] == [OrderStatus.CANCELED]
    assert world.store.open_position(SYMBOL) is None


def test_an_exit_after_the_stop_loss_executed_is_not_sent(world: World) -> None:
    bought(world, sl="97")
    protect_positions(world.store, world.exchange, NATIVE)
    world.emu.advance(2)  # the stop executes on the exchange; the store does not know yet
    sell = place(world.store, world.exchange, intent("late-exit", "0.999", side=Side.SELL))
    assert (sell.status, sell.status_source) == (OrderStatus.CANCELED, StatusSource.PRE_CHECK)
    assert [o.status for o in stops(world)] == [OrderStatus.FILLED]
    assert world.posts() == 2  # the entry and the stop; no sell


def test_protection_of_a_closed_position_is_canceled(world: World) -> None:
    bought(world, sl="85")
    protect_positions(world.store, world.exchange, NATIVE)
    position = world.store.open_position(SYMBOL)
    assert position is not None
    world.store.save_position(  # closed elsewhere (e.g. a manual close that kept the stop)
        position.model_copy(update={"status": PositionStatus.CLOSED}),
        expected_version=position.version,
    )
    report = protect_positions(world.store, world.exchange, NATIVE)
    [stop] = stops(world)
    assert report.released == [f"{stop.client_order_id}:CANCELED"]
    assert stop.cancel_reason == "position closed: sibling executed (OCO)"


def test_the_stop_follows_a_position_that_grew(world: World) -> None:
    bought(world, sl="85")
    protect_positions(world.store, world.exchange, NATIVE)
    place(world.store, world.exchange, intent("add", "0.5"))
    protect_positions(world.store, world.exchange, NATIVE)
    first, second = stops(world)
    assert (first.status, first.cancel_reason) == (
        OrderStatus.CANCELED,
        "resized: position holds 1.4985",
    )
    assert (second.status, second.amount) == (OrderStatus.OPEN, Decimal("1.498"))


def test_a_refused_stop_loss_is_reported_with_what_to_do(world: World) -> None:
    bought(world, sl="101")  # above the price: Binance refuses a stop that would trigger now
    report = protect_positions(world.store, world.exchange, NATIVE)
    [stop] = stops(world)
    assert (stop.status, stop.status_source) == (
        OrderStatus.REJECTED,
        StatusSource.CREATE_RESPONSE,
    )
    assert SYMBOL in report.failed
    [failed] = world.store.list_events(types=[EventType.SLTP_FAILED])
    assert "monitor watches" in failed.message
    [critical] = world.store.list_events(types=[EventType.CRITICAL])
    assert critical.message.startswith("ACTION NEEDED")
    assert "place a stop-loss at 101" in critical.message
    protect_positions(world.store, world.exchange, NATIVE)
    assert len(stops(world)) == 1  # not retried every pass
    assert monitor_positions(runtime(world)).exits == {SYMBOL: "STOP_LOSS_HIT: FILLED"}


def test_without_the_failsafe_there_is_no_critical_event(world: World) -> None:
    bought(world, sl="101")
    protect_positions(world.store, world.exchange, ProtectionPolicy(failsafe=False))
    assert kinds(world, EventType.SLTP_FAILED) and not kinds(world, EventType.CRITICAL)


def test_monitor_protection_watches_both_levels(world: World) -> None:
    bought(world, sl="97", tp="105")
    report = protect_positions(world.store, world.exchange, ProtectionPolicy(mode="monitor"))
    assert report.protected == {SYMBOL: "monitor"}
    assert stops(world) == [] and world.posts() == 1
    [armed] = world.store.list_events(types=[EventType.SLTP_CREATED])
    assert "watched by the position monitor" in armed.message
    world.emu.advance(2)  # close 96 <= 97
    assert monitor_positions(runtime(world)).exits == {SYMBOL: "STOP_LOSS_HIT: FILLED"}
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl == Decimal("96") * Decimal("0.999") - Decimal("100")


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["LIMIT", "MARKET", "STOP_LOSS_LIMIT"], "STOP_LOSS_LIMIT"),
        (["LIMIT", "MARKET"], None),
    ],
)
def test_the_stop_order_follows_what_the_market_offers(
    make_world: MakeWorld, types: list[str], expected: str | None
) -> None:
    world = make_world(markets=[market(order_types=types)])
    bought(world, sl="90")
    report = protect_positions(world.store, world.exchange, NATIVE)
    if expected is None:
        assert report.protected == {SYMBOL: "monitor"} and stops(world) == []
        return
    [stop] = stops(world)
    [remote] = world.orders_on_exchange(stop.client_order_id)
    assert (remote.type, remote.stop_price, remote.price) == (
        expected,
        Decimal("90"),
        Decimal("89.55"),  # 0.5% under the stop
    )


@pytest.mark.parametrize("how", ["drop", "http_error", "timeout"])
def test_a_lost_stop_loss_reply_leaves_exactly_one_stop(world: World, how: str) -> None:
    bought(world, sl="85")
    world.emu.faults.lose_response(how=how, hang_s=3)  # type: ignore[arg-type]
    first = protect_positions(world.store, world.exchange, NATIVE)
    assert SYMBOL in first.failed
    protect_positions(world.store, world.exchange, NATIVE)
    [stop] = stops(world)
    assert stop.status is OrderStatus.OPEN
    assert len(world.orders_on_exchange(stop.client_order_id)) == 1


def test_the_monitor_keeps_unrealized_pnl_for_the_day(world: World) -> None:
    bought(world, sl="85", tp="200")
    world.emu.advance(4)
    report = monitor_positions(runtime(world))
    assert Decimal(report.unrealized_pnl[SYMBOL]) == Decimal("7.892")  # 108 x 0.999 - 100
    from kestrel.models import utcnow

    day = daily_pnl(world.store, utcnow().date().isoformat())
    assert day is not None
    assert Decimal(day["currencies"]["USDT"]["unrealized_pnl"]) == Decimal("7.892")


def test_an_unsellable_remainder_closes_the_position_as_dust(world: World) -> None:
    place(world.store, world.exchange, intent("dusty", "0.1237"))  # rounds down to 0.123
    position = world.store.open_position(SYMBOL)
    assert position is not None
    assert position.amount == Decimal("0.122877")  # 0.123 less the 0.1% fee in BTC
    world.emu.advance(4)  # 108
    assert monitor_positions(runtime(world)).exits == {}  # no exit levels set
    sell = place(world.store, world.exchange, intent("dusty-exit", "0.122", side=Side.SELL))
    assert sell.status is OrderStatus.FILLED
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    dust = Decimal("0.000877")  # below the 0.001 step: it cannot be sold
    assert (closed.amount, closed.dust) == (0, dust)
    entry = Decimal("12.3") / Decimal("0.122877")
    assert closed.realized_pnl == (Decimal("108") - entry) * Decimal("0.122") - dust * entry
    assert world.exchange.fetch_balance()["BTC"]["total"] == float(dust)
