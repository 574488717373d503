"""The live engine: streams in, cycles / syncs / monitor passes out, in one process.

Pure orchestration. What a cycle, a sync or a monitor pass *is* comes from `EngineHooks`
(the flow layer passes Prefect subflows/tasks; tests and the bench pass plain functions), and
market data from a `MarketSource` (ccxt.pro in production, against the emulator in tests).

- Candle close: a closed kline (its close time reached on the engine's clock) is deduplicated
  and ordered by the `CandleBook`; a gap since the last known candle is filled by REST before
  anything runs, candles that could not be traded are recorded as missed with a reason, and
  the newest one is claimed in the store (once per symbol and candle, across engines) and its
  cycle run. A hole that REST cannot fill blocks the cycle: never trade on a hole. Symbols
  whose candles close together (a watchlist on one timeframe closes at one instant) run as
  one cycle: every candle that closes while a cycle runs (or within `batch_window_s` of the
  first) joins the next one, so the cycle's fixed cost is paid once, not per symbol.
- Ticks: checked in memory against the open positions' levels (`ProtectionWatch`); a crossing
  runs the monitor pass at once, with the tick as its price.
- Account events only make the order sync run sooner; the periodic safety-net sync and
  monitor pass stay.
- DEMO (`match_timeframe` set, `account_stream` off): the wallet is the paper exchange, which
  has no account stream; it fills orders on the closed candles of its matching timeframe
  (kestrel.exchange.paper_matching, read by REST). The engine streams those candles for every
  watchlist symbol, and one that closes on a symbol with live orders runs the sync at once: the
  sync's reads make the paper account match that candle and book what it filled.
- Silence: a stream with no message for `silence_s` falls back to REST polling until it
  speaks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol

from kestrel.live.backoff import Backoff
from kestrel.live.candles import CandleBook, Seen, hole
from kestrel.live.claims import CandleClaim, claim_candle, last_claimed, record_missed
from kestrel.live.dedupe import OrderUpdate, OrderUpdateFilter
from kestrel.live.jobs import CoalescedJob
from kestrel.live.recycle import RecycleBound
from kestrel.live.stream import Clock, Sleep, Watchdog, consume
from kestrel.live.ticks import Levels, ProtectionWatch
from kestrel.models import LIVE_STATUSES, timeframe_ms
from kestrel.store.base import Store

__all__ = [
    "ClosedCandle",
    "EngineConfig",
    "EngineHooks",
    "EngineStats",
    "LiveEngine",
    "MarketSource",
]

log = logging.getLogger(__name__)

Row = Sequence[float]


class MarketSource(Protocol):
    """Streams and the REST calls that back them up (async)."""

    async def watch_candles(self, symbol: str, timeframe: str) -> list[list[float]]: ...

    async def watch_tick(self, symbol: str) -> tuple[Decimal, int]: ...

    async def watch_orders(self) -> list[OrderUpdate]: ...

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: int | None, limit: int
    ) -> list[list[float]]: ...


class ClosedCandle(NamedTuple):
    """A candle the engine claimed: its symbol's cycle is due."""

    symbol: str
    timeframe: str
    open_time: int


class EngineHooks(Protocol):
    """What the engine runs. Blocking functions: the engine runs them in a worker thread."""

    def run_cycle(self, closed: Sequence[ClosedCandle]) -> None:
        """One trading cycle over the symbols of `closed` (one candle per symbol)."""
        ...

    def run_sync(self, reason: str) -> None: ...

    def run_monitor(self, reason: str) -> None: ...

    def levels(self) -> list[Levels]: ...


@dataclass(frozen=True)
class EngineConfig:
    watchlist: tuple[tuple[str, str], ...]  # (symbol, timeframe)
    exchange_id: str
    holder: str = "live-engine"
    history: int = 200  # candles a cycle reads: the depth that must have no hole
    silence_s: float = 90.0
    poll_every_s: float = 10.0  # REST polling of a silent series: first step of its backoff
    sync_every_s: float = 60.0  # the safety net, streams or not
    monitor_every_s: float = 60.0
    check_every_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    account_stream: bool = True  # REAL's user data stream; the paper wallet (DEMO) has none
    match_timeframe: str | None = None  # DEMO: the paper exchange's matching candles
    batch_window_s: float = 0.0  # how long a claimed candle waits for others to join it
    recycle: RecycleBound = field(default_factory=RecycleBound)  # none: run until stopped


@dataclass
class EngineStats:
    cycles: int = 0  # started
    cycles_done: int = 0  # returned (ran, or stood down with an event)
    duplicates: int = 0
    stale: int = 0
    missed: int = 0
    gaps_filled: int = 0
    claimed_elsewhere: int = 0
    tick_triggers: int = 0
    fill_triggers: int = 0  # DEMO: syncs asked for by a closed matching candle
    polls: int = 0
    recycled: str | None = None  # why the engine ended itself (a process-recycling bound)
    events: list[str] = field(default_factory=list)


def _wall_ms() -> int:
    return int(time.time() * 1000)


class LiveEngine:
    def __init__(
        self,
        config: EngineConfig,
        store: Store,
        source: MarketSource,
        hooks: EngineHooks,
        *,
        clock: Clock = time.monotonic,
        now_ms: Callable[[], int] = _wall_ms,
        sleep: Sleep = asyncio.sleep,
        on_price: Callable[[str, Decimal, int], None] | None = None,
    ) -> None:
        """on_price: told every streamed price first (the monitor's price source)."""
        self.config = config
        self.store = store
        self.source = source
        self.hooks = hooks
        self.clock = clock
        self.now_ms = now_ms
        self.sleep = sleep
        self.on_price = on_price
        self.book = CandleBook()
        self.match_book = CandleBook()  # apart: a watchlist timeframe may equal the matching one
        self.watch = ProtectionWatch()
        self.orders = OrderUpdateFilter()
        self.stats = EngineStats()
        self.stop_event = asyncio.Event()
        self.sync = CoalescedJob("order-sync", self._thread(hooks.run_sync))
        self.monitor = CoalescedJob("position-monitor", self._thread(hooks.run_monitor))
        self.watchdogs: dict[str, Watchdog] = {}
        self._last_sync = clock()
        self._last_monitor = clock()
        self.last_check = clock()  # the loop's pulse: a keeper stops beating when it stalls
        self._poll_next: dict[tuple[str, str], float] = {}
        self._poll_gap: dict[tuple[str, str], float] = {}
        self._cycle_lock = asyncio.Lock()
        self._due: list[ClosedCandle] = []  # claimed, waiting for the next cycle

    # -- jobs ----------------------------------------------------------------------------------

    def _thread(self, fn: Callable[[str], None]) -> Callable[[str], Awaitable[None]]:
        """A blocking job in a worker thread, then the positions' levels read again."""

        async def run(reason: str) -> None:
            await asyncio.to_thread(fn, reason)
            await self.refresh_levels()

        return run

    async def refresh_levels(self) -> None:
        self.watch.replace(await asyncio.to_thread(self.hooks.levels))

    # -- candles -------------------------------------------------------------------------------

    async def seed(self, symbol: str, timeframe: str) -> None:
        """The book starts from REST history, so the first streamed candle's gap is known; a
        restart resumes after the newest claimed candle, recording the ones it slept through."""
        period = timeframe_ms(timeframe)
        rows = await self.source.fetch_candles(symbol, timeframe, None, self.config.history)
        closed = [int(r[0]) for r in rows if int(r[0]) + period <= self.now_ms()]
        self.book.fill(symbol, period, closed)
        resume = last_claimed(self.store, self.config.exchange_id, symbol, timeframe)
        if resume is None:
            return  # first start: nothing was promised for earlier candles
        for open_time in closed:
            if open_time > resume:  # closed while no engine ran: said, not replayed
                self._missed(
                    symbol,
                    timeframe,
                    open_time,
                    "it closed while the engine was not running (resumed from the store; "
                    "no decision is replayed)",
                )

    async def on_candles(self, symbol: str, timeframe: str, rows: Sequence[Row]) -> None:
        """Rows from watch_ohlcv (or a REST poll): each closed candle not seen yet triggers."""
        period = timeframe_ms(timeframe)
        now = self.now_ms()
        for row in sorted(rows, key=lambda r: r[0]):
            open_time = int(row[0])
            if open_time + period > now:
                continue  # still forming
            await self._closed(symbol, timeframe, period, open_time)

    async def _closed(self, symbol: str, timeframe: str, period: int, open_time: int) -> None:
        gap = self.book.gap_after(symbol, period, open_time)
        seen = self.book.see(symbol, period, open_time)
        if seen is Seen.DUPLICATE:
            self.stats.duplicates += 1
            return
        if seen is Seen.STALE:
            self.stats.stale += 1
            log.info("%s %s: candle %d arrived out of order; ignored", symbol, timeframe, open_time)
            return
        async with self._cycle_lock:
            if gap:
                await self._fill_gap(symbol, timeframe, period, gap)
                for missing in gap:
                    self._missed(
                        symbol,
                        timeframe,
                        missing,
                        "a stream gap (reconnect), filled by "
                        "REST after its time; only the newest closed candle is traded",
                    )
            first_missing = self._hole(symbol, period, open_time)
            if first_missing is not None:
                self._missed(
                    symbol,
                    timeframe,
                    open_time,
                    f"candle {first_missing} is missing "
                    "from the exchange's history: never trade on a hole",
                )
                return
            self._due.append(ClosedCandle(symbol, timeframe, open_time))
        await self._run_due()

    async def _run_due(self) -> None:
        """One cycle over every due candle this engine can claim (none left: another call ran
        ours). Claiming and running happen under the cycle lock together, so a candle is
        never claimed without its cycle running (an engine stopping between cycles leaves
        its unclaimed candles to the next one, which records them as missed)."""
        await self.sleep(self.config.batch_window_s)  # lets the others closing now join
        async with self._cycle_lock:
            due, self._due = self._newest(self._due), []
            batch = [candle for candle in due if self._claim(candle)]
            if not batch:
                return
            self.stats.cycles += len(batch)
            self.stats.events += [f"cycle {c.symbol} {c.open_time}" for c in batch]
            try:
                await asyncio.to_thread(self.hooks.run_cycle, batch)
            finally:
                self.stats.cycles_done += len(batch)
            await self.refresh_levels()

    def _newest(self, due: list[ClosedCandle]) -> list[ClosedCandle]:
        """One candle per symbol and timeframe, the newest; an older one (two closed while a
        cycle ran) is recorded as missed, as its own cycle would have stood down."""
        newest: dict[tuple[str, str], ClosedCandle] = {}
        for candle in sorted(due, key=lambda c: c.open_time):
            older = newest.get((candle.symbol, candle.timeframe))
            if older is not None:
                self._missed(
                    older.symbol,
                    older.timeframe,
                    older.open_time,
                    f"superseded: candle {candle.open_time} closed before its cycle ran",
                )
            newest[(candle.symbol, candle.timeframe)] = candle
        return list(newest.values())

    def _claim(self, candle: ClosedCandle) -> bool:
        """Claim the candle for this engine (once per symbol and candle, across engines)."""
        symbol, timeframe, open_time = candle
        claim = CandleClaim(
            symbol=symbol, timeframe=timeframe, open_time=open_time, holder=self.config.holder
        )
        earlier = claim_candle(self.store, self.config.exchange_id, claim)
        if earlier is None:
            return True
        self.stats.claimed_elsewhere += 1
        log.info(
            "%s %s candle %d: already %s by %s",
            symbol,
            timeframe,
            open_time,
            earlier.outcome,
            earlier.holder,
        )
        return False

    def _hole(self, symbol: str, period: int, open_time: int) -> int | None:
        depth = min(self.config.history, len(self._known(symbol, period)))
        if self.book.complete_through(symbol, period, open_time, depth):
            return None
        return hole(self._known(symbol, period)[-depth:], period)

    def _known(self, symbol: str, period: int) -> list[int]:
        last = self.book.last(symbol, period)
        if last is None:
            return []
        return [t for t in self.book.times(symbol, period) if t <= last]

    async def _fill_gap(self, symbol: str, timeframe: str, period: int, gap: list[int]) -> None:
        rows = await self.source.fetch_candles(symbol, timeframe, gap[0], len(gap) + 1)
        got = [int(r[0]) for r in rows if int(r[0]) in set(gap)]
        self.book.fill(symbol, period, got)
        self.stats.gaps_filled += len(got)

    def _missed(self, symbol: str, timeframe: str, open_time: int, reason: str) -> None:
        claim = CandleClaim(
            symbol=symbol, timeframe=timeframe, open_time=open_time, holder=self.config.holder
        )
        if record_missed(self.store, self.config.exchange_id, claim, reason) is None:
            self.stats.missed += 1
            log.warning("%s %s candle %d: no cycle: %s", symbol, timeframe, open_time, reason)

    # -- the paper wallet's matching candles (DEMO) ---------------------------------------------

    async def on_match_candles(self, symbol: str, rows: Sequence[Row]) -> asyncio.Task[None] | None:
        """Rows of the matching timeframe: a new closed one on a symbol with live orders runs
        the sync now (returns its task); the candle itself is read by the paper exchange."""
        timeframe = self.config.match_timeframe
        if timeframe is None:
            return None
        period, now = timeframe_ms(timeframe), self.now_ms()
        fresh = [
            int(row[0])
            for row in sorted(rows, key=lambda r: r[0])
            if int(row[0]) + period <= now
            and self.match_book.see(symbol, period, int(row[0])) is Seen.NEW
        ]
        if not fresh or not await asyncio.to_thread(self._has_live_orders, symbol):
            return None
        self.stats.fill_triggers += 1
        return self.sync.request(f"{symbol} {timeframe} candle {fresh[-1]} closed (paper fills)")

    def _has_live_orders(self, symbol: str) -> bool:
        return bool(self.store.list_orders(symbol=symbol, statuses=LIVE_STATUSES, limit=1))

    # -- ticks and account ---------------------------------------------------------------------

    async def on_tick(
        self, symbol: str, price: Decimal, timestamp_ms: int
    ) -> asyncio.Task[None] | None:
        """A price: the monitor runs now if it crosses a level (returns its task)."""
        if self.on_price is not None:
            self.on_price(symbol, price, timestamp_ms)
        why = self.watch.crossed(symbol, price)
        if why is None:
            return None
        self.stats.tick_triggers += 1
        return self.monitor.request(f"tick {symbol}: {why}")

    async def on_orders(self, updates: Sequence[OrderUpdate]) -> asyncio.Task[None] | None:
        """Order events: the sync runs sooner (it stays the source of truth)."""
        fresh = [u for u in updates if self.orders.accept(u)]
        if not fresh:
            return None
        ids = ", ".join(sorted({f"{u.symbol} {u.order_id} {u.status}" for u in fresh}))
        return self.sync.request(f"account events: {ids}")

    # -- the safety net and silence ------------------------------------------------------------

    async def check(self) -> None:
        """One supervision step: periodic sync/monitor, REST polling for silent streams."""
        now = self.last_check = self.clock()
        if now - self._last_sync >= self.config.sync_every_s:
            self._last_sync = now
            self.sync.request("safety net (periodic)")
        if now - self._last_monitor >= self.config.monitor_every_s:
            self._last_monitor = now
            self.monitor.request("safety net (periodic)")
        for symbol, timeframe in self.config.watchlist:
            dog = self.watchdogs.get(f"candles {symbol} {timeframe}")
            if dog is not None and dog.silent() and self._poll_due(symbol, timeframe, now):
                await self._poll(symbol, timeframe, now)
        # A quiet account stream is normal (no orders changed): the periodic sync covers it.

    def _poll_due(self, symbol: str, timeframe: str, now: float) -> bool:
        """A silent series is polled only once a candle it has not seen should have closed,
        and then with backoff (poll_every_s, doubling while nothing new comes, up to
        silence_s): a quiet market must not cost a request a second."""
        period = timeframe_ms(timeframe)
        last = self.book.last(symbol, period)
        if last is not None and self.now_ms() < last + 2 * period:
            return False  # the candle after the newest one known is still forming
        return now >= self._poll_next.get((symbol, timeframe), now)

    async def _poll(self, symbol: str, timeframe: str, now: float) -> None:
        period = timeframe_ms(timeframe)
        before = self.book.last(symbol, period)
        self.stats.polls += 1
        rows = await self.source.fetch_candles(symbol, timeframe, None, 3)
        await self.on_candles(symbol, timeframe, rows)
        key = (symbol, timeframe)
        if self.book.last(symbol, period) != before:
            gap = self.config.poll_every_s
        else:
            gap = self._poll_gap.get(key, self.config.poll_every_s / 2) * 2
        self._poll_gap[key] = min(gap, self.config.silence_s)
        self._poll_next[key] = now + self._poll_gap[key]

    # -- running -------------------------------------------------------------------------------

    def _dog(self, name: str) -> Watchdog:
        dog = self.watchdogs[name] = Watchdog(name, self.config.silence_s, self.clock)
        return dog

    def _backoff(self) -> Backoff:
        return Backoff(self.config.backoff_base_s, self.config.backoff_cap_s)

    def _consume[T](
        self, name: str, watch: Callable[[], Awaitable[T]], handle: Callable[[T], Awaitable[None]]
    ) -> asyncio.Task[None]:
        return asyncio.create_task(
            consume(
                watch,
                handle,
                watchdog=self._dog(name),
                backoff=self._backoff(),
                sleep=self.sleep,
                stop=self.stop_event,
            )
        )

    def match_tasks(self, timeframe: str) -> list[asyncio.Task[None]]:
        """DEMO: one consumer of the matching timeframe's candles per watchlist symbol. A
        silent one needs no polling: the periodic sync reads the paper account anyway."""
        tasks = []
        for symbol in dict.fromkeys(s for s, _ in self.config.watchlist):

            async def closed(rows: list[list[float]], s: str = symbol) -> None:
                await self.on_match_candles(s, rows)

            def watch(s: str = symbol) -> Awaitable[list[list[float]]]:
                return self.source.watch_candles(s, timeframe)

            tasks.append(self._consume(f"matching candles {symbol} {timeframe}", watch, closed))
        return tasks

    def stream_tasks(self) -> list[asyncio.Task[None]]:
        """One consumer per candle series and per symbol's ticks; one for the account (REAL)
        or, for the paper wallet (DEMO), one per symbol for its matching candles."""
        tasks: list[asyncio.Task[None]] = []
        stop = self.stop_event
        for symbol, timeframe in self.config.watchlist:

            async def candles(
                rows: list[list[float]],
                s: str = symbol,
                tf: str = timeframe,
            ) -> None:
                await self.on_candles(s, tf, rows)

            async def tick(item: tuple[Decimal, int], s: str = symbol) -> None:
                await self.on_tick(s, item[0], item[1])

            def watch_candles(s: str = symbol, tf: str = timeframe) -> Awaitable[list[list[float]]]:
                return self.source.watch_candles(s, tf)

            def watch_tick(s: str = symbol) -> Awaitable[tuple[Decimal, int]]:
                return self.source.watch_tick(s)

            tasks.append(
                asyncio.create_task(
                    consume(
                        watch_candles,
                        candles,
                        watchdog=self._dog(f"candles {symbol} {timeframe}"),
                        backoff=self._backoff(),
                        sleep=self.sleep,
                        stop=stop,
                    )
                )
            )
            tasks.append(
                asyncio.create_task(
                    consume(
                        watch_tick,
                        tick,
                        watchdog=self._dog(f"ticks {symbol}"),
                        backoff=self._backoff(),
                        sleep=self.sleep,
                        stop=stop,
                    )
                )
            )

        if self.config.match_timeframe is not None:
            tasks.extend(self.match_tasks(self.config.match_timeframe))
        if not self.config.account_stream:
            return tasks

        async def orders(updates: list[OrderUpdate]) -> None:
            await self.on_orders(updates)

        tasks.append(self._consume("orders", self.source.watch_orders, orders))
        return tasks

    async def run(self) -> None:
        """Seed, start the streams, supervise until `stop_event` or a recycling bound."""
        for symbol, timeframe in self.config.watchlist:
            await self.seed(symbol, timeframe)
        await self.refresh_levels()
        self.sync.request("engine start")
        tasks = self.stream_tasks()
        try:
            while not self.stop_event.is_set():
                await self.check()
                if await self._recycled(tasks):
                    return
                await self.sleep(self.config.check_every_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _recycled(self, tasks: list[asyncio.Task[None]]) -> bool:
        """At a bound: stop the streams between cycles (none in flight, none started after),
        let a running sync / monitor pass finish, and say why, once."""
        why = self.config.recycle.reason(self.stats.cycles_done)
        if why is None:
            return False
        async with self._cycle_lock:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(self.sync.settle(), self.monitor.settle())
        self.stats.recycled = why  # the flow's one closing INFO line says it
        log.debug("live engine ends for a fresh process: %s", why)
        return True
