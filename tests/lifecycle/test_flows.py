"""The order-sync and position-monitor flows on a Prefect API (prefect_test_harness), REAL mode
against the emulator through settings and environment, as a deployment runs them: one at a
time under a strict global concurrency slot, polling in a bounded loop.

The fill-to-record delay is printed (run with -s), never asserted: speed goes in bench/."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from flows.upkeep import order_sync, position_monitor
from kestrel.books.wallet import build_exchange, forget_credentials
from kestrel.execution.orders import place
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import OrderRole, OrderStatus, OrderType, PositionStatus
from kestrel.runtime import reset_runtimes
from kestrel.store.router import sqlite_path
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import KEY, SECRET, World, credentials


@pytest.fixture
def deployed(
    prefect_harness: None, make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A world whose store is where the flows' settings put it (data_dir/kestrel_real...)."""
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("KESTREL_MODE", "REAL")  # the installation's mode, never a parameter
    world = make_world(settings={"access": {"lock_timeout_s": 1.0}})
    monkeypatch.setenv("KESTREL_EXCHANGE_API__URL", world.emu.url)  # the installation's too
    path = sqlite_path(world.settings.data_dir, TradingMode.REAL)
    world.store.close()
    world.store = SQLiteStore(path, TradingMode.REAL)
    world.store_path = path
    yield world
    reset_runtimes()
    forget_credentials()


def config(world: World) -> dict[str, object]:
    return world.settings.model_dump(mode="json")


def test_one_sync_pass_reconciles_and_protects(deployed: World) -> None:
    world = deployed
    place(
        world.store,
        world.exchange,
        intent("flow", "1", type=OrderType.LIMIT, price="97", stop_loss="85"),
    )
    world.emu.advance(2)
    report = order_sync(config=config(world))  # called directly: a single pass
    assert (report.passes, report.failed_passes, report.skipped) == (1, 0, False)
    [entry] = world.store.list_orders(roles=[OrderRole.PRIMARY])
    assert report.changed == {entry.client_order_id: "FILLED"}
    [stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert stop.status is OrderStatus.OPEN
    assert report.last["protection"]["created"] == [stop.client_order_id]


def test_the_sync_loop_records_a_fill_within_its_window(deployed: World) -> None:
    world = deployed
    placed = place(
        world.store, world.exchange, intent("loop", "1", type=OrderType.LIMIT, price="97")
    )
    filled_at: list[datetime] = []

    def fill_later() -> None:
        time.sleep(1.5)
        world.emu.advance(2)
        filled_at.append(datetime.now(UTC))

    filler = threading.Thread(target=fill_later)
    filler.start()
    report = order_sync(config=config(world), window_s=4.0, poll_s=0.5)
    filler.join()
    assert report.passes >= 3 and report.failed_passes == 0
    order = world.store.get_order(placed.client_order_id)
    assert order is not None and order.status is OrderStatus.FILLED
    delay = (order.updated_at - filled_at[0]).total_seconds()
    print(f"\nfill -> record delay with poll_s=0.5: {delay:.3f}s over {report.passes} passes")


def test_a_second_run_waits_for_the_slot_then_skips(deployed: World) -> None:
    from tasks.upkeep import one_at_a_time

    world = deployed
    with trading_mode(TradingMode.REAL), one_at_a_time("order-sync", 1.0) as held:
        assert held
        report = order_sync(config=config(world))
    assert report.skipped and report.passes == 0
    assert order_sync(config=config(world)).passes == 1  # the slot is free again


def test_the_monitor_flow_takes_profit(deployed: World) -> None:
    world = deployed
    place(world.store, world.exchange, intent("mon", "1", stop_loss="85", take_profit="105"))
    order_sync(config=config(world))  # protection: the native stop-loss
    world.emu.advance(4)
    report = position_monitor(config=config(world))
    assert report.passes == 1 and list(report.changed.values()) == ["TAKE_PROFIT_HIT: FILLED"]
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl == Decimal("108") * Decimal("0.999") - 100
    [stop] = world.store.list_orders(roles=[OrderRole.STOP_LOSS])
    assert stop.status is OrderStatus.CANCELED


def test_credentials_from_an_exchange_account_block(
    deployed: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from blocks.exchange_account import ExchangeAccount, use_exchange_account

    world = deployed
    monkeypatch.delenv("KESTREL_BINANCE_API_KEY")
    monkeypatch.delenv("KESTREL_BINANCE_API_SECRET")
    ExchangeAccount(api_key=KEY, secret=SECRET).save("lifecycle-account", overwrite=True)
    settings = world.settings.model_copy(
        update={
            "exchange_api": world.settings.exchange_api.model_copy(
                update={"credentials": "block", "credentials_block": "lifecycle-account"}
            )
        }
    )
    assert "lifecycle-account" in settings.model_dump_json()
    assert KEY not in settings.model_dump_json()
    with trading_mode(TradingMode.REAL):
        assert use_exchange_account(settings)
        exchange = build_exchange(settings, world.store)
    assert exchange.fetch_balance()["USDT"]["total"] == 10000.0
    forget_credentials()
    report = order_sync(config=settings.model_dump(mode="json"))
    assert report.passes == 1 and report.errors == []
    assert credentials().api_key.get_secret_value() == KEY
