"""Trailing stops switched on by configuration (profile or `trading.trailing`), armed and
ratcheted by the position monitor, replaced on the exchange by protection (issue 12, item 10).
Real ccxt against the emulator; prices in tests/lifecycle/scenario.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.models import EventType, Order, OrderRole, OrderStatus, PositionStatus
from kestrel.operator.live import effective_settings, set_setting
from kestrel.runtime import Runtime
from kestrel.strategy.profiles import Trailing
from kestrel.strategy.resolve import trailing_for
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World
from tests.risk.test_cli import run as run_cli

MONITOR = ProtectionPolicy(mode="monitor")
NATIVE = ProtectionPolicy()


def trailing(distance: str, activation: str = "0") -> dict[str, Any]:
    return {"trading": {"trailing": {"distance_pct": distance, "activation_pct": activation}}}


def runtime(world: World) -> Runtime:
    return Runtime(settings=world.settings, store=world.store, exchange=world.exchange)


def stops(world: World) -> list[Order]:
    return world.store.list_orders(roles=[OrderRole.STOP_LOSS])


def held(world: World) -> Decimal | None:
    position = world.store.open_position(SYMBOL)
    assert position is not None
    return position.stop_loss


def test_the_stop_trails_the_high_once_active_and_exits(make_world: MakeWorld) -> None:
    world = make_world(settings=trailing("5", activation="5"))
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    protect_positions(world.store, world.exchange, MONITOR)
    rt = runtime(world)
    assert monitor_positions(rt).exits == {}  # 100: not 5% up yet, the stop stays at 85
    position = world.store.open_position(SYMBOL)
    assert position is not None
    assert (position.trailing_stop_pct, position.trailing_activation_pct) == (
        Decimal("0.05"),
        Decimal("0.05"),
    )
    assert position.stop_loss == Decimal("85")
    world.emu.advance(4)  # 108 >= 105: active, the stop rises to 108 x 0.95
    assert monitor_positions(rt).exits == {}
    assert held(world) == Decimal("102.6")
    [active] = world.store.list_events(types=[EventType.SLTP_CREATED])[-1:]
    assert active.event_id.startswith("trailing:") and "102.6" in active.message
    world.emu.advance(2)  # 101 <= 102.6
    assert monitor_positions(rt).exits == {SYMBOL: "TRAILING_STOP_HIT: FILLED"}
    [sold] = world.store.list_orders(roles=[OrderRole.EXIT])
    assert (sold.amount, sold.average_price) == (Decimal("0.999"), Decimal("101"))
    assert world.store.open_position(SYMBOL) is None


def test_before_its_activation_the_stop_does_not_trail(make_world: MakeWorld) -> None:
    world = make_world(settings=trailing("5", activation="10"))
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    rt = runtime(world)
    world.emu.advance(4)  # 108 < 110
    monitor_positions(rt)
    world.emu.advance(2)  # 101: would be a trailing hit, but trailing never started
    assert monitor_positions(rt).exits == {}
    assert held(world) == Decimal("85")


def test_the_trailing_stop_never_lowers_a_higher_stop(make_world: MakeWorld) -> None:
    world = make_world(settings=trailing("5"))
    place(world.store, world.exchange, intent("entry", "1", stop_loss="99"))
    rt = runtime(world)
    monitor_positions(rt)  # 100 x 0.95 = 95 < 99: the stop stays
    assert held(world) == Decimal("99")
    world.emu.advance(1)  # 101: 95.95 < 99 still
    monitor_positions(rt)
    assert held(world) == Decimal("99")


def test_a_ratcheted_stop_replaces_the_native_stop_order(make_world: MakeWorld) -> None:
    world = make_world(settings=trailing("5", activation="5"))
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    protect_positions(world.store, world.exchange, NATIVE)
    rt = runtime(world)
    world.emu.advance(4)
    monitor_positions(rt)  # the stop-loss is now 102.6
    protect_positions(world.store, world.exchange, NATIVE)
    first, second = stops(world)
    assert first.status is OrderStatus.CANCELED
    assert (first.cancel_reason or "").startswith("moved: stop-loss 85 -> 102.6")
    assert (second.status, second.stop_price, second.amount) == (
        OrderStatus.OPEN,
        Decimal("102.6"),
        Decimal("0.999"),
    )
    world.emu.advance(2)  # dips to 100: the exchange executes the stop at 102.6
    assert monitor_positions(rt).deferred == {SYMBOL: "stop-loss order live on the exchange"}
    sync_orders(world.store, world.exchange)
    [closed] = world.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl == Decimal("102.6") * Decimal("0.999") - Decimal("100")
    assert world.store.list_orders(roles=[OrderRole.EXIT]) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        (
            {"profiles": {"SWING": {"trailing": {"distance_pct": "3", "activation_pct": "1"}}}},
            Trailing(distance_pct=Decimal("3"), activation_pct=Decimal("1")),
        ),
        (
            {
                "profiles": {"SWING": {"trailing": {"distance_pct": "3"}}},
                "trailing": {"distance_pct": "2", "activation_pct": "4"},
            },
            Trailing(distance_pct=Decimal("2"), activation_pct=Decimal("4")),
        ),
        (
            {
                "profiles": {"SWING": {"trailing": {"distance_pct": "3"}}},
                "trailing": {"distance_pct": "0"},
            },
            None,
        ),
    ],
)
def test_trailing_comes_from_the_profile_unless_the_setting_overrides_it(
    config: dict[str, Any], expected: Trailing | None
) -> None:
    settings = load_settings(watchlist=[{"symbol": SYMBOL}], trading=config)
    assert trailing_for(settings, SYMBOL) == expected


def test_a_trailing_distance_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"trailing.distance_pct\s+Input should be less than 100"):
        load_settings(trading={"profiles": {"SCALP": {"trailing": {"distance_pct": "150"}}}})


def test_a_live_setting_switches_trailing_on_for_the_next_monitor_pass(world: World) -> None:
    place(world.store, world.exchange, intent("entry", "1", stop_loss="85"))
    rt = runtime(world)
    monitor_positions(rt)
    position = world.store.open_position(SYMBOL)
    assert position is not None and position.trailing_stop_pct is None  # off by default
    set_setting(world.store, world.settings, "trailing.distance_pct", "5", by="test")
    live = Runtime(
        settings=effective_settings(world.settings, world.store),
        store=world.store,
        exchange=world.exchange,
    )
    world.emu.advance(4)
    monitor_positions(live)
    assert held(world) == Decimal("102.6")


def test_kestrel_strategy_shows_each_symbols_trailing_stop(tmp_path: Path) -> None:
    result = run_cli(
        ["strategy"],
        tmp_path,
        KESTREL_WATCHLIST='[{"symbol": "BTC/USDT", "strategy": "scalp"}]',
        KESTREL_TRADING__PROFILES='{"SCALP": {"trailing": {"distance_pct": "0.5"}}}',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].endswith("target 1.0%, trailing 0.5%")
    off = run_cli(["strategy"], tmp_path, KESTREL_WATCHLIST='[{"symbol": "BTC/USDT"}]')
    assert off.stdout.splitlines()[1].endswith(", no trailing")
