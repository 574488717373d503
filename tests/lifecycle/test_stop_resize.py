"""A stop-loss resize whose old stop has just executed on the exchange: the new stop is sized
from the position as the old stop's fills left it (issue 12, item 6). Real ccxt against the
emulator; the store learns of the fill only through the resize's cancel."""

from __future__ import annotations

from decimal import Decimal

from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.models import EventType, Order, OrderRole, OrderStatus, PositionStatus
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World

NATIVE = ProtectionPolicy()


def stops(world: World) -> list[Order]:
    return world.store.list_orders(roles=[OrderRole.STOP_LOSS])


def test_a_resize_after_the_old_stop_filled_protects_what_is_left(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="97"))
    protect_positions(world.store, world.exchange, NATIVE)  # a stop for 0.999 at 97
    place(world.store, world.exchange, intent("add", "0.5"))  # holds 1.4985: resize due
    world.emu.advance(2)  # meanwhile the dip to 95 executes the old stop (0.999 at 97)
    world.emu.advance(2)  # and the price is back at 108, above the stop
    report = protect_positions(world.store, world.exchange, NATIVE)
    first, second = stops(world)
    assert (first.status, first.filled) == (OrderStatus.FILLED, Decimal("0.999"))
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.amount == Decimal("0.4995")
    assert (second.status, second.amount, second.stop_price) == (
        OrderStatus.OPEN,
        Decimal("0.499"),
        Decimal("97"),
    )
    assert report.failed == {}
    assert world.store.list_events(types=[EventType.CRITICAL, EventType.SLTP_FAILED]) == []


def test_a_resize_after_the_old_stop_closed_the_position_places_nothing(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="97"))
    protect_positions(world.store, world.exchange, NATIVE)  # a stop for 0.999
    position = world.store.open_position(SYMBOL)
    assert position is not None
    world.store.save_position(  # the books hold a little less (e.g. a fee corrected)
        position.model_copy(update={"amount": Decimal("0.9985")}),
        expected_version=position.version,
    )
    world.emu.advance(2)  # the old stop executes for all 0.999
    report = protect_positions(world.store, world.exchange, NATIVE)
    [stop] = stops(world)
    assert stop.status is OrderStatus.FILLED
    assert world.store.list_positions(status=PositionStatus.OPEN) == []
    assert report.protected == {SYMBOL: "stop-loss executed"}
    assert world.store.list_events(types=[EventType.CRITICAL, EventType.SLTP_FAILED]) == []
