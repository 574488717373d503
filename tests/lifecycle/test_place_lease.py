"""`place()` takes the symbol's lease itself (issue: two raw placements of one intent sent it
twice while the first POST was in flight, because the look-up of an earlier attempt cannot see
a request the exchange has not processed yet). Real ccxt against the emulator; the interleaving
is forced with the emulator's `hold` gate, never with sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from kestrel.books.wallet import build_exchange
from kestrel.exchange.ccxt_exchange import CcxtExchange
from kestrel.execution.lease import LeaseBusy, LeaseHolder, LeaseLost, acquire, release, symbol_key
from kestrel.execution.lease import symbol_lease as lease_of
from kestrel.execution.orders import place
from kestrel.ids import installation_id
from kestrel.models import Order, OrderStatus, utcnow
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World, credentials
from tests.lifecycle.test_sync import Placement

HANG_GUARD_S = 30.0  # only bounds a broken run; nothing waits for it in a passing one


@pytest.fixture
def second_client(world: World) -> Iterator[CcxtExchange]:
    exchange = build_exchange(world.settings, world.store, credentials=credentials())
    exchange.load_markets()
    yield exchange


def test_a_second_placer_of_an_intent_in_flight_stands_down(
    world: World, second_client: CcxtExchange
) -> None:
    order = intent("race", "0.5")
    gate = world.emu.faults.hold(path="/api/v3/order", method="POST", hang_s=HANG_GUARD_S)
    first = Placement(world, order)  # its own thread, store connection and ccxt client
    try:
        assert gate.arrived.wait(HANG_GUARD_S), "the first POST never reached the exchange"
        # The first POST is in flight: the exchange has not processed it, so no look-up can
        # find it. The second placer must not send.
        second: Order | Exception = place(world.store, second_client, order)
    except Exception as exc:
        second = exc
    finally:
        gate.open()
        [outcome] = first.join()
    sent = world.orders_on_exchange(order.client_order_id)
    assert len(sent) == 1, f"the intent reached the exchange {len(sent)} times"
    assert world.posts() == 1
    assert isinstance(second, LeaseBusy) and "order placement" in str(second), repr(second)
    assert isinstance(outcome, Order) and outcome.status is OrderStatus.FILLED
    # The lease was given back: placing again resolves from the store, sends nothing.
    again = place(world.store, second_client, order)
    assert again.version == outcome.version and world.posts() == 1


def test_a_caller_holding_the_lease_places_under_it(world: World) -> None:
    key = symbol_key(world.exchange.id, SYMBOL)
    with lease_of(world.store, world.exchange.id, SYMBOL, "position monitor") as held:
        placed = place(world.store, world.exchange, intent("reentrant", "0.5"))
        assert placed.status is OrderStatus.FILLED
        state = world.store.get_state(key)
        assert state is not None and state[0]["holder"]["token"] == held.lease.holder.token
        assert not state[0]["released"]  # place() left the caller's lease alone
    assert world.posts() == 1


def test_a_lease_passed_along_is_honoured_while_it_is_ours(world: World) -> None:
    """A task on another worker gets its flow's lease: it places under it; once the lease is
    no longer that holding's (released, expired, taken over), it sends nothing."""
    holder = LeaseHolder.here(installation_id(world.store), "trading-cycle run calm-lynx")
    key = symbol_key(world.exchange.id, SYMBOL)
    lease = acquire(world.store, key, holder)
    placed = place(world.store, world.exchange, intent("passed", "0.5"), lease=lease)
    assert placed.status is OrderStatus.FILLED
    release(world.store, lease)
    with pytest.raises(LeaseLost):
        place(world.store, world.exchange, intent("stale", "0.5"), lease=lease)
    expired = acquire(world.store, key, holder, now=lambda: utcnow() - timedelta(minutes=5))
    with pytest.raises(LeaseLost):
        place(world.store, world.exchange, intent("expired", "0.5"), lease=expired)
    assert world.posts() == 1
    assert world.store.get_order(intent("stale").client_order_id) is None


def test_a_raw_placement_stands_down_while_another_run_holds_the_symbol(world: World) -> None:
    holder = LeaseHolder.here(installation_id(world.store), "trading-cycle run brave-owl")
    holder = holder.model_copy(update={"pid": 424242, "host": "worker-2", "process_space": "x"})
    acquire(world.store, symbol_key(world.exchange.id, SYMBOL), holder)
    with pytest.raises(LeaseBusy, match="brave-owl"):
        place(world.store, world.exchange, intent("blocked", "0.5"))
    assert world.posts() == 0
    assert world.store.get_order(intent("blocked").client_order_id) is None
