"""A position the market will not buy back (below its minimum amount or notional) is marked
DUST once instead of being retried every pass, and exits never sell more than the exchange
holds: through real ccxt against the emulator (issue 12, item 5)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from kestrel.execution.monitor import monitor_positions
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.trailing import levels_text
from kestrel.models import EventType, OrderRole, OrderStatus, PositionStatus
from kestrel.risk.breaker import streaks
from kestrel.runtime import Runtime
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import KEY, SYMBOL, World

MONITOR = ProtectionPolicy(mode="monitor")


def runtime(world: World) -> Runtime:
    return Runtime(settings=world.settings, store=world.store, exchange=world.exchange)


def exits(world: World) -> list[OrderStatus]:
    return [o.status for o in world.store.list_orders(roles=[OrderRole.EXIT])]


def test_a_position_below_the_minimum_notional_is_marked_dust_once(world: World) -> None:
    # 0.055 x 100 = 5.5 USDT (minimum 5); the position holds 0.054945 after the fee in BTC.
    place(world.store, world.exchange, intent("small", "0.055", stop_loss="93"))
    protect_positions(world.store, world.exchange, MONITOR)
    world.emu.advance(3)  # close 92 <= 93, and 0.054 x 92 = 4.968 < 5: it cannot be sold
    rt = runtime(world)
    world.emu.reset_request_counts()
    reports = [monitor_positions(rt) for _ in range(4)]
    assert [r.deferred for r in reports] == [{SYMBOL: "DUST: cannot be sold"}] * 4
    assert exits(world) == []  # nothing refused, nothing sent
    assert world.posts() == 0
    assert world.store.list_events(types=[EventType.ORDER_REJECTED]) == []
    assert streaks(world.store, datetime(2000, 1, 1, tzinfo=UTC)).failed_orders == 0
    [dust] = world.store.list_events(types=[EventType.TRADE_BLOCKED])
    assert dust.reasons == ["BELOW_MIN_NOTIONAL", "STOP_LOSS_HIT"]
    assert "4.968" in dust.message and "DUST" in dust.message
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.unsellable is not None
    assert position.status is PositionStatus.OPEN  # its coins are still held and counted
    shown = levels_text(position)  # status, /positions
    assert "DUST: BELOW_MIN_NOTIONAL" in shown and "(0.054 x 92" in shown


def test_a_dust_position_exits_when_the_price_makes_it_sellable_again(world: World) -> None:
    place(world.store, world.exchange, intent("small", "0.055", stop_loss="93", take_profit="99"))
    protect_positions(world.store, world.exchange, MONITOR)
    rt = runtime(world)
    world.emu.advance(3)  # 92: dust
    assert monitor_positions(rt).deferred == {SYMBOL: "DUST: cannot be sold"}
    world.emu.advance(1)  # 108 >= 99, and 0.054 x 108 = 5.832: sellable
    assert monitor_positions(rt).exits == {SYMBOL: "TAKE_PROFIT_HIT: FILLED"}
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.unsellable is None
    assert exits(world) == [OrderStatus.FILLED]


def test_an_exit_never_sells_more_than_the_exchange_holds(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", take_profit="105"))
    with world.emu.engine.lock:  # 0.3 BTC leave the account outside Kestrel (a withdrawal)
        world.emu.engine.account(KEY).spend_free("BTC", Decimal("0.3"))
    world.emu.advance(4)  # 108 >= 105
    report = monitor_positions(runtime(world))
    assert report.exits == {SYMBOL: "TAKE_PROFIT_HIT: FILLED"}
    [sold] = world.store.list_orders(roles=[OrderRole.EXIT])
    assert (sold.status, sold.amount) == (OrderStatus.FILLED, Decimal("0.699"))
    assert world.store.list_events(types=[EventType.ORDER_REJECTED]) == []


def test_an_exit_sells_what_its_own_stop_loss_order_reserves(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85", take_profit="105"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())  # native: locks 0.999
    world.emu.advance(4)
    assert monitor_positions(runtime(world)).exits == {SYMBOL: "TAKE_PROFIT_HIT: FILLED"}
    [sold] = world.store.list_orders(roles=[OrderRole.EXIT])
    assert sold.amount == Decimal("0.999")
    assert world.store.open_position(SYMBOL) is None
