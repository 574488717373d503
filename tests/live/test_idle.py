"""What the engine asks the exchange while nothing happens: a silent candle stream is polled
by REST only once a candle can have closed, not on every supervision step."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator import BinanceEmulator
from kestrel.live import EngineConfig
from kestrel.store import Store
from tests.emulator.scripted import T0
from tests.live.conftest import ManualClock, Recorder
from tests.live.test_engine import CONFIG, H, _engine, _run, _subscribed


def test_a_silent_stream_is_polled_only_once_a_candle_can_have_closed(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    config = EngineConfig(
        watchlist=CONFIG.watchlist, exchange_id="binance", history=3, silence_s=30
    )

    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock, config=config, now_ms=lambda: emu.now_ms)
        await engine.seed("BTC/USDT", "1h")
        tasks = engine.stream_tasks()
        await _subscribed(emu, "btcusdt@kline_1h")
        emu.streams.silenced = True  # connected, but says nothing
        clock.now += 31  # silent past silence_s
        emu.reset_request_counts()
        for _ in range(5):  # five supervision steps inside the forming candle
            await engine.check()
        assert engine.stats.polls == 0
        assert emu.request_count("/api/v3/klines") == 0
        emu.advance()  # the forming candle closes; the stream stays silent
        await engine.check()
        assert engine.stats.polls == 1
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + H)]
