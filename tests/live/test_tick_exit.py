"""A tick crossing a stop exits through the existing position monitor (kestrel.execution.monitor),
REAL
mode, real ccxt and ccxt.pro against the emulator: the position has no stop resting on the
exchange (protection mode "monitor"), the emulator streams a trade below the stop, and the
engine sends the exit market order. A native stop on the exchange leaves it to the exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.live import CcxtProSource, EngineConfig, LiveEngine
from kestrel.live.direct import DirectHooks
from kestrel.models import OrderRole
from kestrel.runtime import Runtime
from tests.lifecycle.conftest import MakeWorld, make_world, real_mode  # noqa: F401 (fixtures)
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World
from tests.live.conftest import ManualClock

CONFIG = EngineConfig(watchlist=((SYMBOL, "1h"),), exchange_id="binance", history=3)


def _exit_on_tick(world: World, tick: str) -> tuple[DirectHooks, LiveEngine]:
    rt = Runtime(settings=world.settings, store=world.store, exchange=world.exchange)
    hooks = DirectHooks(rt)

    async def main() -> LiveEngine:
        client = world.emu.ccxt_pro_client()
        await client.load_markets()
        engine = LiveEngine(
            CONFIG,
            world.store,
            CcxtProSource(client),
            hooks,
            clock=ManualClock(),
            on_price=hooks.price,
        )
        try:
            await engine.refresh_levels()
            tasks = engine.stream_tasks()
            s = world.emu.streams
            assert await asyncio.to_thread(s.wait_for, lambda: s.subscribers("btcusdt@trade") > 0)
            world.emu.publish_tick(SYMBOL, Decimal(tick))
            while hooks.prices.price(SYMBOL) is None:
                await asyncio.sleep(0.005)
            if engine.monitor.busy or engine.monitor.requests:
                while engine.monitor.busy or engine.monitor.runs < engine.monitor.requests:
                    await asyncio.sleep(0.005)
            engine.stop_event.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return engine
        finally:
            await client.close()

    async def bounded() -> LiveEngine:
        return await asyncio.wait_for(main(), 30)

    return hooks, asyncio.run(bounded())


def _exits(world: World) -> list[Any]:
    return world.store.list_orders(roles=[OrderRole.EXIT])


def test_a_tick_below_the_stop_sends_the_exit(make_world: MakeWorld) -> None:  # noqa: F811
    world = make_world()
    place(world.store, world.exchange, intent("entry", "1", stop_loss="95"))
    protect_positions(world.store, world.exchange, ProtectionPolicy(mode="monitor"))
    _, engine = _exit_on_tick(world, "94.5")
    assert engine.stats.tick_triggers == 1
    exits = _exits(world)
    assert len(exits) == 1 and exits[0].reason == "STOP_LOSS_HIT"
    assert [o.type for o in world.orders_on_exchange(exits[0].client_order_id)] == ["MARKET"]


def test_a_tick_above_the_stop_sends_nothing(make_world: MakeWorld) -> None:  # noqa: F811
    world = make_world()
    place(world.store, world.exchange, intent("entry", "1", stop_loss="95"))
    protect_positions(world.store, world.exchange, ProtectionPolicy(mode="monitor"))
    _, engine = _exit_on_tick(world, "96")
    assert engine.stats.tick_triggers == 0 and _exits(world) == []


def test_a_native_stop_on_the_exchange_is_left_to_execute_there(
    make_world: MakeWorld,  # noqa: F811
) -> None:
    world = make_world()
    place(world.store, world.exchange, intent("entry", "1", stop_loss="95"))
    protect_positions(world.store, world.exchange, ProtectionPolicy(mode="native"))
    _, engine = _exit_on_tick(world, "94.5")
    assert engine.stats.tick_triggers == 0 and _exits(world) == []
