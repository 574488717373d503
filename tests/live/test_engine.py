"""The live engine against the emulator with the REAL ccxt.pro client: a closed candle runs
one cycle, once per symbol and candle even across two engines; a reconnect gap is filled by
REST and recorded; a hole blocks trading; a tick crossing a stop runs the monitor; order
events make the sync run sooner; a silent stream falls back to REST polling.

Clocks are injected (ManualClock); waits are on events the engine produces, never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from emulator import BinanceEmulator
from kestrel.live import CANDLE_MISSED, CcxtProSource, EngineConfig, LiveEngine
from kestrel.live.engine import ClosedCandle
from kestrel.mode import TradingMode, trading_mode
from kestrel.store import Store
from tests.emulator.scripted import KEY, T0, account, scripted_market
from tests.live.conftest import ManualClock, Recorder, stop_at

H = 3_600_000
SAFETY_S = 20
CONFIG = EngineConfig(watchlist=(("BTC/USDT", "1h"),), exchange_id="binance", history=3)


def _run(emu: BinanceEmulator, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        client = emu.ccxt_pro_client()
        try:
            await client.load_markets()
            with trading_mode(TradingMode.REAL):
                await asyncio.wait_for(body(client), SAFETY_S)
        finally:
            await client.close()

    asyncio.run(main())


def _engine(
    store: Store, client: Any, hooks: Recorder, clock: ManualClock, **kw: Any
) -> LiveEngine:
    config = kw.pop("config", CONFIG)
    return LiveEngine(config, store, CcxtProSource(client), hooks, clock=clock, **kw)


async def _until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until `predicate` holds (bounded by the test's safety timeout)."""
    while not predicate():
        await asyncio.sleep(0.005)  # let threads and sockets progress; no timing assumed


async def _subscribed(emu: BinanceEmulator, stream: str) -> None:
    s = emu.streams
    assert await asyncio.to_thread(s.wait_for, lambda: s.subscribers(stream) > 0)


def test_a_streamed_candle_close_runs_one_cycle_once(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock)
        await engine.seed("BTC/USDT", "1h")
        tasks = engine.stream_tasks()
        await _subscribed(emu, "btcusdt@kline_1h")
        await asyncio.to_thread(emu.advance)
        await _until(lambda: len(hooks.cycles) == 1)
        # The same rows again (a reconnect replays the last kline): no second cycle.
        rows = await client.fetch_ohlcv("BTC/USDT", "1h")
        await engine.on_candles("BTC/USDT", "1h", rows)
        # A second engine on the same store (an overlapping restart) never reruns it.
        other = Recorder()
        second = _engine(store, client, other, clock)
        await second.seed("BTC/USDT", "1h")
        await second.on_candles("BTC/USDT", "1h", rows)
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert other.cycles == []
        assert engine.stats.duplicates >= 1

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + H)]


def test_a_gap_after_a_reconnect_is_filled_by_rest_and_recorded(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock)
        await engine.seed("BTC/USDT", "1h")
        emu.advance(3)  # three candles close while the stream is away
        rows = await client.fetch_ohlcv("BTC/USDT", "1h")
        await engine.on_candles("BTC/USDT", "1h", rows[-1:])  # the stream's first kline back
        assert engine.stats.gaps_filled == 2

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + 3 * H)]
    missed = [e for e in store.list_events() if CANDLE_MISSED in e.reasons]
    assert sorted(e.data["open_time"] for e in missed) == [T0 + H, T0 + 2 * H]
    assert all("filled by REST" in e.message for e in missed)


class _HoleySource(CcxtProSource):
    """The exchange's own history lacks a candle (REST cannot fill it)."""

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: int | None, limit: int
    ) -> list[list[float]]:
        rows = await super().fetch_candles(symbol, timeframe, since, limit)
        return [r for r in rows if int(r[0]) != T0 + 2 * H]


def test_a_hole_that_rest_cannot_fill_blocks_the_cycle(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        engine = LiveEngine(CONFIG, store, _HoleySource(client), hooks, clock=clock)
        await engine.seed("BTC/USDT", "1h")
        emu.advance(3)
        rows = await client.fetch_ohlcv("BTC/USDT", "1h")
        await engine.on_candles("BTC/USDT", "1h", rows[-1:])

    _run(emu, body)
    assert hooks.cycles == []
    events = [e for e in store.list_events() if CANDLE_MISSED in e.reasons]
    missed = {e.data["open_time"]: e.message for e in events}
    assert "never trade on a hole" in missed[T0 + 3 * H]


def test_a_tick_crossing_a_stop_runs_the_monitor_with_that_price(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    prices: list[tuple[str, Decimal]] = []

    async def body(client: Any) -> None:
        hooks.current = [stop_at("BTC/USDT", "95")]
        engine = _engine(
            store, client, hooks, clock, on_price=lambda s, p, t: prices.append((s, p))
        )
        await engine.refresh_levels()
        tasks = engine.stream_tasks()
        await _subscribed(emu, "btcusdt@trade")
        emu.publish_tick("BTC/USDT", Decimal("96"))
        await _until(lambda: len(prices) == 1)
        assert hooks.monitors == []
        emu.publish_tick("BTC/USDT", Decimal("94.5"))
        await _until(lambda: len(hooks.monitors) == 1)
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    _run(emu, body)
    assert prices == [("BTC/USDT", Decimal("96")), ("BTC/USDT", Decimal("94.5"))]
    assert hooks.monitors == ["tick BTC/USDT: price 94.5 <= stop-loss 95"]


def test_order_events_make_the_sync_run_sooner_once(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock)
        tasks = engine.stream_tasks()
        s = emu.streams
        assert await asyncio.to_thread(s.wait_for, lambda: s.user_subscribers(KEY) > 0)
        await client.create_order("BTC/USDT", "limit", "buy", 1, 90)
        await _until(lambda: engine.sync.runs == 1 and not engine.sync.busy)
        # The same order seen again (REST poll, a replay) does not nudge another sync.
        assert await engine.on_orders(await CcxtProSource(client).watch_orders_rest()) is None
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    _run(emu, body)
    assert len(hooks.syncs) == 1 and hooks.syncs[0].startswith("account events: BTC/USDT 1 open")


def test_a_silent_candle_stream_falls_back_to_rest_polling(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        config = EngineConfig(
            watchlist=CONFIG.watchlist, exchange_id="binance", history=3, silence_s=30
        )
        engine = _engine(store, client, hooks, clock, config=config)
        await engine.seed("BTC/USDT", "1h")
        tasks = engine.stream_tasks()
        await _subscribed(emu, "btcusdt@kline_1h")
        emu.streams.silenced = True  # connected, but says nothing
        emu.advance()
        await engine.check()
        assert hooks.cycles == [] and engine.stats.polls == 0  # not silent for long yet
        clock.now += 31
        await engine.check()
        assert engine.stats.polls == 1
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + H)]


def test_a_silent_series_is_polled_when_a_close_is_due_and_then_with_backoff(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    wall = [T0 + 2 * H - 1]  # the candle after T0 has not closed yet

    async def body(client: Any) -> None:
        config = EngineConfig(
            watchlist=CONFIG.watchlist,
            exchange_id="binance",
            history=3,
            silence_s=30,
            poll_every_s=10,
        )
        engine = _engine(store, client, hooks, clock, config=config, now_ms=lambda: wall[0])
        await engine.seed("BTC/USDT", "1h")  # the book knows T0 as the newest closed candle
        tasks = engine.stream_tasks()
        await _subscribed(emu, "btcusdt@kline_1h")
        emu.streams.silenced = True  # connected, but says nothing
        clock.now += 31
        await engine.check()
        assert engine.stats.polls == 0  # nothing new can have closed: no request
        wall[0] = T0 + 2 * H  # T0 + H closes now
        emu.advance()
        await engine.check()
        assert engine.stats.polls == 1 and hooks.cycles == [("BTC/USDT", "1h", T0 + H)]
        wall[0] = T0 + 3 * H + 1  # the next close is due, but the exchange has nothing yet
        await engine.check()
        assert engine.stats.polls == 1  # 10 s after a fresh candle, not sooner
        gaps = []
        for _ in range(4):
            before = engine.stats.polls
            waited = 0
            while engine.stats.polls == before:
                clock.now += 1
                waited += 1
                await engine.check()
            gaps.append(waited)
        assert gaps == [10, 20, 30, 30]  # doubling while nothing new comes, up to silence_s
        engine.stop_event.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    _run(emu, body)


def test_the_safety_net_runs_sync_and_monitor_on_the_clock(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock)
        await engine.check()
        assert engine.sync.requests == 0
        clock.now += 60
        await engine.check()
        await _until(lambda: engine.sync.runs == 1 and engine.monitor.runs == 1)
        await _until(lambda: not engine.sync.busy and not engine.monitor.busy)

    _run(emu, body)
    assert hooks.syncs == ["safety net (periodic)"]
    assert hooks.monitors == ["safety net (periodic)"]


def test_a_restart_resumes_from_the_store_without_replaying(
    emu: BinanceEmulator, store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    async def body(client: Any) -> None:
        first = _engine(store, client, hooks, clock)
        await first.seed("BTC/USDT", "1h")
        emu.advance()
        await first.on_candles("BTC/USDT", "1h", await client.fetch_ohlcv("BTC/USDT", "1h"))
        emu.advance(2)  # two candles close while no engine runs
        again = Recorder()
        second = _engine(store, client, again, clock)
        await second.seed("BTC/USDT", "1h")
        rows = await client.fetch_ohlcv("BTC/USDT", "1h")
        await second.on_candles("BTC/USDT", "1h", rows)  # a replayed stream: nothing reruns
        assert again.cycles == []

    _run(emu, body)
    assert hooks.cycles == [("BTC/USDT", "1h", T0 + H)]
    missed = [e for e in store.list_events() if CANDLE_MISSED in e.reasons]
    assert sorted(e.data["open_time"] for e in missed) == [T0 + 2 * H, T0 + 3 * H]
    assert all("not running" in e.message for e in missed)


def test_candles_closing_together_run_as_one_cycle(
    store: Store, hooks: Recorder, clock: ManualClock
) -> None:
    """Two symbols' candles close at one instant (one timeframe): one cycle over both, each
    candle claimed once; the cycle's fixed cost is paid once, not per symbol."""
    eth = scripted_market().model_copy(update={"symbol": "ETH/USDT"})
    emu = BinanceEmulator([scripted_market(), eth], accounts=[account(btc="2")]).start()
    symbols = ("BTC/USDT", "ETH/USDT")
    config = EngineConfig(
        watchlist=tuple((s, "1h") for s in symbols), exchange_id="binance", history=3
    )

    async def body(client: Any) -> None:
        engine = _engine(store, client, hooks, clock, config=config)
        for symbol in symbols:
            await engine.seed(symbol, "1h")
        await asyncio.to_thread(emu.advance)
        rows = {s: await client.fetch_ohlcv(s, "1h") for s in symbols}
        await asyncio.gather(*(engine.on_candles(s, "1h", rows[s]) for s in symbols))
        assert engine.stats.cycles == engine.stats.cycles_done == 2

    try:
        _run(emu, body)
    finally:
        errors = emu.internal_errors
        emu.stop()
    assert errors == []
    assert hooks.batches == [[ClosedCandle(s, "1h", T0 + H) for s in symbols]]
