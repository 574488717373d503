"""The live engine in DEMO: the wallet is the paper exchange, priced by the exchange's PUBLIC
candles (CcxtLiveFeed over real ccxt, at the emulator), streams through a keyless ccxt.pro
client, and no account stream. A cycle trades on the 1h candle's close, its market order
fills from the next 1m candle (the paper matching timeframe) and the engine books that fill
when that candle closes on the stream; a streamed tick below the stop exits; the books
reconcile with the paper fills.

Clocks: the emulator's candle clock is the market's (the paper feed and the engine read it),
the engine's own monotonic clock is a ManualClock that never moves, so the periodic safety
net never runs: every sync seen here was asked for by a stream. Waits are hang guards only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from emulator import BinanceEmulator, MarketConfig
from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_factory import build_paper_exchange
from kestrel.live import CcxtProSource, EngineConfig, LiveEngine, OrderUpdate, build_pro_client
from kestrel.live.direct import DirectHooks
from kestrel.market import CcxtLiveFeed
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Order, OrderRole, OrderStatus, PositionStatus
from kestrel.reporting.summary import summarize
from kestrel.runtime import Runtime
from kestrel.store import SQLiteStore
from tests.live.conftest import ManualClock

MINUTE, HOUR = 60_000, 3_600_000
T0 = 1_699_999_200_000  # on an hour boundary
SYMBOL = "BTC/USDT"
HISTORY_H = 24  # hours closed at start
SAFETY_S = 60


DIP = T0 + (HISTORY_H + 1) * HOUR + 5 * MINUTE  # a 1m candle whose low is 95


def _minutes() -> list[list[float | int | str]]:
    """30 hours of 1m candles: 100 for 24 hours, then 101 (the close rises: a BUY), with one
    minute dipping to 95 (a resting stop fills on it)."""
    rows: list[list[float | int | str]] = []
    for i in range(30 * 60):
        p = Decimal(100 if i < HISTORY_H * 60 else 101)
        low = Decimal(95) if T0 + i * MINUTE == DIP else p - Decimal("0.2")
        rows.append([T0 + i * MINUTE, str(p), str(p + Decimal("0.2")), str(low), str(p), "1000"])
    return rows


@pytest.fixture
def emu() -> Iterator[BinanceEmulator]:
    market = MarketConfig(symbol=SYMBOL, candles=_minutes(), tick_size=Decimal("0.01"))
    e = BinanceEmulator([market], start_index=HISTORY_H * 60 - 1).start()
    yield e
    errors = e.internal_errors
    e.stop()
    assert errors == []


def demo_settings(emu: BinanceEmulator, data_dir: Path, protection: str) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        exchange="binance",
        exchange_api={"url": emu.url, "ws_url": emu.ws_url, "protection": protection},
        watchlist=[{"symbol": SYMBOL, "timeframe": "1h"}],
        trading={"default_strategy": "tests.live.buyer:RisingClose"},
        paper={"market_data": "live"},
    )


@dataclass
class Demo:
    emu: BinanceEmulator
    rt: Runtime
    hooks: DirectHooks
    engine: LiveEngine
    syncs: list[str]

    @property
    def paper(self) -> PaperExchange:
        assert isinstance(self.rt.exchange, PaperExchange)
        return self.rt.exchange

    def orders(self, role: OrderRole) -> list[Order]:
        return self.rt.store.list_orders(symbol=SYMBOL, roles=[role])

    def placed(self, role: OrderRole) -> bool:
        """One order of `role`, acknowledged by the paper exchange (not just an intent):
        moving the clock before that would make it an order of the next candle."""
        return [o.status for o in self.orders(role)] == [OrderStatus.OPEN]

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Yield until `predicate` holds (the test's timeout is the hang guard)."""
        while not await asyncio.to_thread(predicate):
            await asyncio.sleep(0.01)

    async def advance(self, candles: int = 1) -> None:
        await asyncio.to_thread(self.emu.advance, candles)


class RecordingHooks(DirectHooks):
    """DirectHooks (the real cycle, sync and monitor), noting why each sync ran."""

    def __init__(self, rt: Runtime, syncs: list[str]) -> None:
        super().__init__(rt)
        self.syncs = syncs

    def run_sync(self, reason: str) -> None:
        super().run_sync(reason)
        self.syncs.append(reason)


def run_demo(
    emu: BinanceEmulator, tmp_path: Path, protection: str, body: Callable[[Demo], Awaitable[None]]
) -> Demo:
    settings = demo_settings(emu, tmp_path, protection)
    store = SQLiteStore(tmp_path / "kestrel_demo.sqlite3", TradingMode.DEMO)
    # The paper market's clock is the emulator's (a wall clock would be years past its data).
    feed = CcxtLiveFeed(emu.ccxt_client(api_key="", secret=""), clock=lambda: emu.now_ms)
    rt = Runtime(settings, store, build_paper_exchange(settings, store, feed), feed)
    syncs: list[str] = []
    hooks = RecordingHooks(rt, syncs)
    config = EngineConfig(
        watchlist=((SYMBOL, "1h"),),
        exchange_id=rt.exchange.id,
        history=3,
        account_stream=False,
        match_timeframe=feed.match_timeframe,
    )

    async def main() -> Demo:
        client = build_pro_client(settings.exchange, settings.exchange_api, None)
        try:
            await client.load_markets()
            engine = LiveEngine(
                config,
                store,
                CcxtProSource(client),
                hooks,
                clock=ManualClock(),
                now_ms=lambda: emu.now_ms,
                on_price=hooks.price,
            )
            demo = Demo(emu, rt, hooks, engine, syncs)
            await engine.seed(SYMBOL, "1h")
            await engine.refresh_levels()
            tasks = engine.stream_tasks()
            s = emu.streams
            for stream in ("btcusdt@kline_1h", "btcusdt@kline_1m", "btcusdt@trade"):
                assert await asyncio.to_thread(s.wait_for, lambda st=stream: s.subscribers(st) > 0)
            try:
                await asyncio.wait_for(body(demo), SAFETY_S)
                kinds = {c["kind"] for c in s.describe()}
                assert kinds == {"market"}, kinds  # no user data stream, no WebSocket API
            finally:
                engine.stop_event.set()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return demo
        finally:
            await client.close()

    with trading_mode(TradingMode.DEMO):
        return asyncio.run(main())


def test_a_demo_engine_trades_fills_exits_and_reconciles_on_streamed_candles(
    emu: BinanceEmulator, tmp_path: Path
) -> None:
    next_minute = T0 + HISTORY_H * HOUR + HOUR  # the first 1m candle after the cycle's hour

    async def body(demo: Demo) -> None:
        await demo.advance(60)  # hour 24 closes (1h kline on the stream): the cycle buys
        await demo.until(lambda: demo.placed(OrderRole.PRIMARY))
        await demo.until(lambda: demo.engine.stats.cycles_done == 1)
        [entry] = demo.orders(OrderRole.PRIMARY)
        assert entry.status is not OrderStatus.FILLED  # a market order waits for a candle
        assert demo.paper.fetch_my_trades(SYMBOL) == []
        await demo.advance()  # its 1m candle closes: the paper fills it, the engine books it
        await demo.until(lambda: demo.orders(OrderRole.PRIMARY)[0].status is OrderStatus.FILLED)
        # The sync that booked it is done (it holds the symbol's lease while protecting: a
        # monitor pass meanwhile would defer its exit to the next tick, and there is one).
        await demo.until(lambda: not demo.engine.sync.busy)
        [position] = demo.rt.store.list_positions(status=PositionStatus.OPEN)
        assert position.stop_loss is not None
        await demo.engine.refresh_levels()
        demo.emu.publish_tick(SYMBOL, position.stop_loss - Decimal("0.5"))
        await demo.until(lambda: demo.placed(OrderRole.EXIT))
        await demo.advance()  # the exit's 1m candle closes: filled and booked
        await demo.until(lambda: demo.rt.store.list_positions(status=PositionStatus.OPEN) == [])

    demo = run_demo(emu, tmp_path, "monitor", body)
    trades = demo.paper.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["timestamp"]) for t in trades] == [
        ("buy", next_minute),
        ("sell", next_minute + MINUTE),
    ]
    [exit_order] = demo.orders(OrderRole.EXIT)
    assert exit_order.reason == "STOP_LOSS_HIT" and exit_order.status is OrderStatus.FILLED
    assert demo.engine.stats.tick_triggers >= 1
    # Every booking came from a streamed candle: no periodic sync ever ran.
    assert demo.syncs and not any("safety net" in why for why in demo.syncs)
    assert any(f"candle {next_minute} closed (paper fills)" in why for why in demo.syncs)
    with trading_mode(TradingMode.DEMO):
        fills = demo.rt.store.list_fills()
        assert sorted((f.price, f.amount) for f in fills) == sorted(
            (Decimal(t["info"]["price"]), Decimal(t["info"]["amount"])) for t in trades
        )
        summary = summarize(demo.rt, demo.rt.settings.paper.starting_balances(), cycles=1)
    assert summary.reconciled, summary.books
    assert summary.fills == 2


def test_a_stop_resting_on_the_paper_exchange_fills_by_its_rules_and_is_booked(
    emu: BinanceEmulator, tmp_path: Path
) -> None:
    """Native protection: the sync that books the entry places the stop on the paper exchange;
    a tick below it is the exchange's business (no monitor exit), and the 1m candle whose low
    crosses it fills it, booked when that candle closes on the stream."""

    async def body(demo: Demo) -> None:
        await demo.advance(60)
        await demo.until(lambda: demo.placed(OrderRole.PRIMARY))
        await demo.advance()
        await demo.until(lambda: demo.placed(OrderRole.STOP_LOSS))
        await demo.engine.refresh_levels()
        [position] = demo.rt.store.list_positions(status=PositionStatus.OPEN)
        assert position.stop_loss is not None
        assert await demo.engine.on_tick(SYMBOL, position.stop_loss - 1, DIP) is None
        await demo.advance((DIP - demo.emu.now_ms) // MINUTE + 1)  # through the dip's close
        await demo.until(lambda: demo.rt.store.list_positions(status=PositionStatus.OPEN) == [])

    demo = run_demo(emu, tmp_path, "native", body)
    trades = demo.paper.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["timestamp"]) for t in trades][-1] == ("sell", DIP)
    [stop] = demo.orders(OrderRole.STOP_LOSS)
    assert stop.status is OrderStatus.FILLED
    assert demo.orders(OrderRole.EXIT) == [] and demo.engine.stats.tick_triggers == 0
    assert not any("safety net" in why for why in demo.syncs)
    with trading_mode(TradingMode.DEMO):
        summary = summarize(demo.rt, demo.rt.settings.paper.starting_balances(), cycles=1)
    assert summary.reconciled, summary.books


def test_a_matching_candle_runs_the_sync_only_for_a_symbol_with_live_orders(
    tmp_path: Path,
) -> None:
    """No live order on the symbol: nothing can fill, no sync. A live order: one sync per
    new closed candle; a replayed or still-forming candle asks for nothing."""
    from tests.lifecycle.intents import intent
    from tests.live.conftest import Recorder

    store = SQLiteStore(tmp_path / "kestrel_demo.sqlite3", TradingMode.DEMO)
    hooks = Recorder()
    now = T0 + 10 * MINUTE
    config = EngineConfig(
        watchlist=((SYMBOL, "1h"),), exchange_id="paper", account_stream=False,
        match_timeframe="1m",
    )  # fmt: skip

    def row(i: int) -> list[float]:
        return [float(T0 + i * MINUTE), 100.0, 100.0, 100.0, 100.0, 1.0]

    async def main() -> None:
        engine = LiveEngine(config, store, _NoSource(), hooks, now_ms=lambda: now)
        assert await engine.on_match_candles(SYMBOL, [row(8)]) is None
        store.insert_order(intent("demo", mode=TradingMode.DEMO))  # NEW: live
        task = await engine.on_match_candles(SYMBOL, [row(8), row(9), row(10)])
        assert task is not None
        await task
        assert await engine.on_match_candles(SYMBOL, [row(9)]) is None  # seen already
        assert await engine.on_match_candles("ETH/USDT", [row(9)]) is None  # no order there

    with trading_mode(TradingMode.DEMO):
        asyncio.run(asyncio.wait_for(main(), SAFETY_S))
    store.close()
    assert hooks.syncs == [f"{SYMBOL} 1m candle {T0 + 9 * MINUTE} closed (paper fills)"]


class _NoSource:
    """The engine's market source, never called here (the candles are handed over)."""

    async def watch_candles(self, symbol: str, timeframe: str) -> list[list[float]]:
        raise AssertionError("not streamed in this test")

    async def watch_tick(self, symbol: str) -> tuple[Decimal, int]:
        raise AssertionError("not streamed in this test")

    async def watch_orders(self) -> list[OrderUpdate]:
        raise AssertionError("DEMO has no account stream")

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: int | None, limit: int
    ) -> list[list[float]]:
        raise AssertionError("not fetched in this test")
