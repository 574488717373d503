"""Process recycling: at a bound (cycles run, resident memory) the engine ends by itself
between cycles, and the next engine on the same store resumes after the newest claimed candle
without replaying a decision. Against the emulator with the real ccxt.pro client; waits are on
what the engine does, never on time."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from emulator import BinanceEmulator
from kestrel.live import CANDLE_MISSED, CcxtProSource, LiveEngine, RecycleBound
from kestrel.store import Store
from tests.emulator.scripted import T0
from tests.live.conftest import ManualClock, Recorder
from tests.live.test_engine import CONFIG, H, _run, _subscribed, _until


def test_the_engine_ends_itself_at_the_cycle_bound_and_a_restart_resumes(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    bounded = dataclasses.replace(CONFIG, recycle=RecycleBound(after_cycles=1), check_every_s=0.001)

    async def body(client: Any) -> None:
        first = LiveEngine(bounded, store, CcxtProSource(client), hooks, clock=clock)
        runner = asyncio.create_task(first.run())
        await _subscribed(emu, "btcusdt@kline_1h")
        await asyncio.to_thread(emu.advance)
        await runner  # returns by itself: nobody sets stop_event
        assert not first.stop_event.is_set()
        assert first.stats.recycled == "1 cycle(s) run, bound 1"
        emu.advance(1)  # closes while no engine runs
        again = Recorder()
        second = LiveEngine(CONFIG, store, CcxtProSource(client), again, clock=clock)
        await second.seed("BTC/USDT", "1h")
        await second.on_candles("BTC/USDT", "1h", await client.fetch_ohlcv("BTC/USDT", "1h"))
        assert again.cycles == []  # nothing replayed
        emu.advance(1)
        await second.on_candles("BTC/USDT", "1h", await client.fetch_ohlcv("BTC/USDT", "1h"))
        await _until(lambda: len(again.cycles) == 1)
        assert again.cycles == [("BTC/USDT", "1h", T0 + 3 * H)]

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + H)]
    missed = [e for e in store.list_events() if CANDLE_MISSED in e.reasons]
    assert [e.data["open_time"] for e in missed] == [T0 + 2 * H]


def test_without_a_bound_the_engine_does_not_end_itself() -> None:
    assert RecycleBound().reason(cycles_done=10**6, rss=10.0**6) is None


def test_the_memory_bound_names_what_it_saw() -> None:
    bound = RecycleBound(above_rss_mb=500)
    assert bound.reason(cycles_done=0, rss=499.0) is None
    assert bound.reason(cycles_done=0, rss=612.4) == "resident memory 612 MiB > bound 500 MiB"
