"""Crash safety: a real process is killed (os._exit) at each step of placement, sync,
protection and the monitor's OCO exit, then started again. Afterwards the exchange has
exactly one order per intent and the store matches the exchange order by order, fill by fill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.execution.lease import LeaseHolder, acquire, symbol_key
from kestrel.execution.orders import CRASH_ENV, CRASH_EXIT_CODE, place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import UNSENT_EXIT_GRACE_S, sync_orders
from kestrel.models import OrderRole, OrderStatus, PositionStatus, utcnow
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import World

ROOT = Path(__file__).resolve().parents[2]
EMU_STATUS = {
    "NEW": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.CANCELED,
}


def run(world: World, action: dict[str, Any], crash_at: str | None = None) -> int:
    args = {
        "url": world.emu.url,
        "db": str(world.store_path),
        "data_dir": str(world.settings.data_dir),
        **action,
    }
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at:
        env[CRASH_ENV] = crash_at
    done = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.crash_worker", json.dumps(args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, CRASH_EXIT_CODE), done.stderr[-3000:]
    return done.returncode


def assert_store_matches_exchange(world: World) -> None:
    stored = {o.client_order_id: o for o in world.store.list_orders()}
    remote = world.orders_on_exchange()
    remote_ids = [o.client_order_id for o in remote]
    assert len(remote_ids) == len(set(remote_ids)), "an intent reached the exchange twice"
    for order in remote:
        mine = stored.get(order.client_order_id)
        assert mine is not None, f"exchange order {order.order_id} unknown to the store"
        assert mine.status is EMU_STATUS[order.status], mine.client_order_id
        assert mine.exchange_order_id == str(order.order_id)
        assert mine.filled == order.executed_qty
        fills = world.store.list_fills(client_order_id=mine.client_order_id)
        assert len(fills) == world.trades_on_exchange(order.order_id)
    for cid, mine in stored.items():
        if mine.status not in (OrderStatus.REJECTED, OrderStatus.FAILED):
            assert cid in remote_ids or mine.status is OrderStatus.CANCELED, cid


PLACE_STEPS = ["place:intent_stored", "place:before_send", "place:sent", "place:recorded"]


@pytest.mark.parametrize(
    ("kind", "step"),
    [("market", step) for step in PLACE_STEPS] + [("limit", "place:sent")],
)
def test_a_crash_at_any_step_of_placement(world: World, kind: str, step: str) -> None:
    action = {"action": "place", "tag": "crash", "amount": "0.5", "type": kind}
    if kind == "limit":
        action["price"] = "97"
    assert run(world, action, crash_at=step) == CRASH_EXIT_CODE
    assert run(world, action) == 0
    assert run(world, action) == 0  # and once more: nothing changes
    cid = intent("crash").client_order_id
    assert len(world.orders_on_exchange(cid)) == 1
    assert world.posts() == 1
    assert_store_matches_exchange(world)
    expected = OrderStatus.FILLED if kind == "market" else OrderStatus.OPEN
    order = world.store.get_order(cid)
    assert order is not None and order.status is expected


SYNC_STEPS = [
    "sync:open_orders_fetched",
    "sync:order_resolved",
    "place:intent_stored",  # the stop-loss placed by the protection pass
    "place:before_send",
    "place:sent",
    "place:recorded",
]


@pytest.mark.parametrize("step", SYNC_STEPS)
def test_a_crash_at_any_step_of_sync_and_protection(world: World, step: str) -> None:
    place(world.store, world.exchange, intent("a", "1", type=_limit(), price="97", stop_loss="85"))
    place(world.store, world.exchange, intent("b", "0.5", type=_limit(), price="50"))
    world.emu.advance(2)  # a fills at 97; b rests
    assert run(world, {"action": "sync"}, crash_at=step) == CRASH_EXIT_CODE
    assert run(world, {"action": "sync"}) == 0
    assert_store_matches_exchange(world)
    [stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert stop.status is OrderStatus.OPEN
    assert len(world.orders_on_exchange(stop.client_order_id)) == 1
    position = world.store.open_position("BTC/USDT")
    assert position is not None and position.amount == Decimal("0.999")


MONITOR_STEPS = ["place:intent_stored", "cancel:sent", "place:before_send", "place:sent"]


@pytest.mark.parametrize("step", MONITOR_STEPS)
def test_a_crash_at_any_step_of_a_take_profit_exit(world: World, step: str) -> None:
    place(world.store, world.exchange, intent("tp", "1", stop_loss="85", take_profit="105"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())
    world.emu.advance(4)  # 108 >= 105
    assert run(world, {"action": "monitor"}, crash_at=step) == CRASH_EXIT_CODE
    assert run(world, {"action": "monitor"}) == 0
    assert run(world, {"action": "sync"}) == 0
    assert_store_matches_exchange(world)
    exits = world.store.list_orders(roles=[OrderRole.EXIT])
    assert [o.status for o in exits] == [OrderStatus.FILLED]
    assert len(world.orders_on_exchange(exits[0].client_order_id)) == 1
    [stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert stop.status is OrderStatus.CANCELED
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.amount == 0


def _limit() -> Any:
    from kestrel.models import OrderType

    return OrderType.LIMIT


@pytest.mark.parametrize("step", ["cancel:sent", "place:way_cleared"])
def test_a_crash_between_canceling_the_stop_and_sending_the_exit(world: World, step: str) -> None:
    """The process dies after the stop is canceled and before the exit is sent: nobody holds
    the symbol's lease any more, so the very next sync pass fails the unsent exit and its
    protection pass puts the stop back (no waiting on a clock)."""
    place(world.store, world.exchange, intent("naked", "1", stop_loss="85", take_profit="105"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())
    world.emu.advance(4)  # 108 >= 105: the monitor exits
    assert run(world, {"action": "monitor"}, crash_at=step) == CRASH_EXIT_CODE
    [first_stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert [o.status for o in world.orders_on_exchange(first_stop.client_order_id)] == ["CANCELED"]
    [unsent] = world.store.list_orders(roles=[OrderRole.EXIT])
    assert (unsent.status, unsent.send_attempts) == (OrderStatus.NEW, 0)
    assert run(world, {"action": "sync"}) == 0  # one sync + protection pass
    failed = world.store.get_order(unsent.client_order_id)
    assert failed is not None and failed.status is OrderStatus.FAILED
    assert "never sent" in (failed.reason or "")
    stops = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert [s.status for s in stops] == [OrderStatus.CANCELED, OrderStatus.OPEN]
    assert stops[1].amount == Decimal("0.999")
    assert [o.status for o in world.orders_on_exchange(stops[1].client_order_id)] == ["NEW"]


def test_an_unsent_exit_whose_placement_still_holds_the_lease_is_left_for_the_grace(
    world: World,
) -> None:
    """While a live holder has the symbol's lease, its placement may still be cancelling
    stops: sync leaves the unsent exit alone until UNSENT_EXIT_GRACE_S has passed."""
    place(world.store, world.exchange, intent("held", "1", stop_loss="85", take_profit="105"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())
    world.emu.advance(4)
    assert run(world, {"action": "monitor"}, crash_at="place:way_cleared") == CRASH_EXIT_CODE
    [unsent] = world.store.list_orders(roles=[OrderRole.EXIT])
    holder = LeaseHolder.here("test", "a placement that is still running")
    acquire(world.store, symbol_key(world.exchange.id, unsent.symbol), holder)
    sync_orders(world.store, world.exchange)
    still = world.store.get_order(unsent.client_order_id)
    assert still is not None and still.status is OrderStatus.NEW
    # The clock moves past the unsent-exit grace (30 s), well inside the intent grace (300 s).
    world.store.update_order(
        still.model_copy(
            update={"updated_at": utcnow() - timedelta(seconds=UNSENT_EXIT_GRACE_S * 2)}
        ),
        expected_version=still.version,
    )
    sync_orders(world.store, world.exchange)
    failed = world.store.get_order(unsent.client_order_id)
    assert failed is not None and failed.status is OrderStatus.FAILED
