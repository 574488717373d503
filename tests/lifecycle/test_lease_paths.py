"""Every path that places orders for a symbol does so under the symbol's lease, and stands
down naming the holder while another run holds it: the monitor's exits, the order sync's
protection, and the trading cycle (its stand-down decision). Real ccxt against the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kestrel.execution.lease import LeaseBusy, LeaseHolder, acquire, release, symbol_key
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.ids import installation_id
from kestrel.models import Action, EventType, OrderRole, OrderStatus, ReasonCode
from kestrel.runtime import Runtime
from kestrel.strategy.resolve import resolve_plan
from kestrel.trading import cycle
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World


@pytest.fixture
def rt(world: World) -> Runtime:
    return Runtime(settings=world.settings, store=world.store, exchange=world.exchange)


def brave_owl(world: World) -> LeaseHolder:
    """A trading cycle on another machine (same installation, same store)."""
    holder = LeaseHolder.here(installation_id(world.store), "trading-cycle run brave-owl")
    elsewhere = {"pid": 424242, "host": "worker-2", "process_space": "worker-2/pid:[1]"}
    return holder.model_copy(update=elsewhere)


@pytest.fixture
def other_run(world: World) -> Iterator[LeaseHolder]:
    """A process on another machine (same installation, same store) holds BTC/USDT's lease
    during the test."""
    holder = brave_owl(world)
    lease = acquire(world.store, symbol_key(world.exchange.id, SYMBOL), holder)
    yield holder
    release(world.store, lease)


@pytest.fixture
def entry_then_other_run(world: World) -> Iterator[LeaseHolder]:
    """A position with a stop-loss, placed before another run took the symbol's lease
    (place() itself stands down while someone else holds it)."""
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    holder = brave_owl(world)
    lease = acquire(world.store, symbol_key(world.exchange.id, SYMBOL), holder)
    yield holder
    release(world.store, lease)


def test_the_monitor_defers_an_exit_while_another_run_trades_the_symbol(
    world: World, rt: Runtime
) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85", take_profit="105"))
    world.emu.advance(4)  # rallies to 110: take-profit hit
    holder = LeaseHolder.here(installation_id(world.store), "trading-cycle run brave-owl")
    lease = acquire(world.store, symbol_key(world.exchange.id, SYMBOL), holder)

    report = monitor_positions(rt)
    assert report.exits == {}
    assert "being traded by trading-cycle run brave-owl" in report.deferred[SYMBOL]
    assert world.store.list_orders(roles=[OrderRole.EXIT]) == []
    assert world.posts() == 1  # the entry only

    release(world.store, lease)
    assert monitor_positions(rt).exits == {SYMBOL: "TAKE_PROFIT_HIT: FILLED"}


def test_protection_waits_for_the_symbol(world: World, entry_then_other_run: LeaseHolder) -> None:
    report = protect_positions(world.store, world.exchange, ProtectionPolicy())
    assert "LeaseBusy" in report.failed[SYMBOL] and "brave-owl" in report.failed[SYMBOL]
    assert world.store.list_orders(roles=[OrderRole.STOP_LOSS]) == []


def test_protection_is_placed_once_the_symbol_is_free(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())
    [stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert stop.status is OrderStatus.OPEN
    assert installation_id(world.store) in stop.client_order_id


def test_a_cycle_stands_down_naming_the_holder(
    world: World, rt: Runtime, other_run: LeaseHolder
) -> None:
    plan = resolve_plan(world.settings, world.settings.watch(SYMBOL))
    analysis = cycle.analyze_candles(cycle.fetch_candles(rt, plan.item), plan.profile)
    key = symbol_key(world.exchange.id, SYMBOL)
    with pytest.raises(LeaseBusy) as busy:
        acquire(world.store, key, LeaseHolder.here(installation_id(world.store), "cycle"))

    decision = cycle.stand_down(rt, plan, analysis, busy.value)
    assert decision.action is Action.HOLD and decision.client_order_id is None
    [reason] = decision.reasons
    assert reason.code is ReasonCode.SKIP_SYMBOL_BUSY
    assert reason.values["holder"] == other_run.describe()
    assert "pid 424242 on worker-2" in reason.detail and "until" in reason.detail
    [event] = world.store.list_events(types=[EventType.TRADE_HELD])
    assert event.reasons == ["SKIP_SYMBOL_BUSY"]
    assert "being traded by trading-cycle run brave-owl (pid 424242 on worker-2" in event.message


def test_an_intent_stored_before_ids_carried_the_installation_still_resolves(
    world: World,
) -> None:
    """Upgrading with an intent in flight: it is resumed by the id it was stored with."""
    old_format = "krp-" + "3f9a0c1b2d4e5f60718293a4b5"  # 30 chars: no installation in it
    stored = world.store.insert_order(
        intent("before-upgrade", "1").model_copy(update={"client_order_id": old_format})
    )
    placed = place(world.store, world.exchange, stored)
    assert placed.status is OrderStatus.FILLED
    [remote] = world.orders_on_exchange()
    assert remote.client_order_id == old_format == placed.client_order_id
    assert placed.exchange_order_id == str(remote.order_id)
