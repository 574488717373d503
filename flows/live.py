"""`live-engine`: one long-lived process that streams market data and account events
(kestrel.live over ccxt.pro) and runs, in-process, a trading cycle when candles close (one
cycle over every symbol whose candle closed at that instant), the order sync when account
events arrive (and every exchange_api.sync_window_s as a safety net), and the position
monitor when a tick crosses a level (and periodically).

REAL trades the exchange account (keys, user data stream). DEMO trades the paper wallet
(kestrel.live.wallet): no keys, public streams only; the paper exchange is priced by the
exchange's live candles (paper.market_data "live", or "auto" with the exchange reachable) and
fills on its matching timeframe's candles (1m), so the engine streams those too and runs the
order sync as soon as one closes on a symbol with live orders. A DEMO paper market that is not
live (a replay, a simulation) stands the engine down.

Each of those is a subflow or task of this flow run, so the Prefect UI shows every cycle
(its fetch, analyze and trade stage tasks), sync and monitor pass the engine ran, with state
and logs. Imports happen once, at start.

The monitor never waits on Prefect: it first asks for the position-monitor deployment's
concurrency slot (so a scheduled run and the engine do not both pass at once) for at most
`SLOT_WAIT_S`; when the slot cannot be had, the engine runs its own pass anyway and logs why.
Exits are safe either way: every exit is placed under the symbol's lease in the store.

While it runs, the engine is the active side (flows/handover.py): it pauses the schedules of
the order-sync, position-monitor, notifications and covered trading-cycle deployments, drains
the notification outbox itself when events arrive, beats a heartbeat every 30 s and resumes
the schedules when it stops; if it dies, the dead-man's switch resumes them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from flows._entry import settle
from flows.handover import STUCK_AFTER_S, Handover, Keeper, engine_active
from flows.notifications import telegram_missing
from flows.trading_cycle import CycleFailed, Publish, publish_decisions, run_cycle
from flows.upkeep import order_sync
from kestrel.config.settings import KestrelSettings
from kestrel.live.client import build_pro_client
from kestrel.live.direct import DirectHooks, record_stood_down
from kestrel.live.engine import ClosedCandle, EngineConfig, EngineStats, LiveEngine
from kestrel.live.recycle import RecycleBound
from kestrel.live.source import CcxtProSource
from kestrel.live.ticks import Levels
from kestrel.live.wallet import LiveWallet, live_wallet
from kestrel.mode import trading_mode
from kestrel.models import Decision
from kestrel.notify.pacer import DrainPacer
from kestrel.operator.live import load_effective
from kestrel.runtime import Runtime, get_runtime
from kestrel.strategy.resolve import SymbolPlan
from tasks.live import live_monitor_task
from tasks.notify import drain_notifications_task, telegram_settings
from tasks.upkeep import one_at_a_time, prepare_exchange_access

log = logging.getLogger(__name__)
SLOT_WAIT_S = 2.0
#: how long a claimed candle waits for the other symbols closing at the same instant (their
#: streams report the close within about a second of each other) to join its cycle
BATCH_WINDOW_S = 1.0


class TablePublisher:
    """The engine's decisions tables, published off the cycle's path: a cycle's orders are
    out and the engine free for the next candles before its table reaches the API (one
    request, tens of milliseconds). One table at a time, in cycle order, each in a copy of
    the engine run's context so it is that run's artifact; a failed publish is logged, never
    fails anything. The worker thread is not a daemon: the process waits for the last table
    before it exits."""

    def __init__(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decisions-table")

    def __call__(
        self, settings: KestrelSettings, decisions: list[Decision], failed: list[str], data: str
    ) -> None:
        context = contextvars.copy_context()
        future = self._worker.submit(
            context.run, publish_decisions, settings, decisions, failed, data
        )
        future.add_done_callback(_said)

    def wait(self) -> None:
        """Until every table queued so far is published (tests, a bench)."""
        self._worker.submit(lambda: None).result()


def _said(future: Future[None]) -> None:
    if future.exception() is not None:
        log.warning("the decisions table was not published: %s", future.exception())


def live_cycle(
    settings: KestrelSettings,
    rt: Runtime,
    closed: Sequence[ClosedCandle],
    publish: Publish | None = None,
) -> int:
    """The trading cycle over the symbols whose candle just closed, as stage tasks of the
    engine's own flow run (no subflow: a flow run costs Prefect about a second, mostly its
    heartbeat thread being joined, while the engine's run already heartbeats). A candle whose
    series does not confirm it stands down with an event; a failing symbol is named in an
    ERROR line of the engine's run and the decisions table, and the engine goes on. Returns
    the decisions made."""
    opened = {candle.symbol: candle.open_time for candle in closed}

    def stood_down(plan: SymbolPlan, why: str) -> None:
        record_stood_down(rt, plan, opened[plan.symbol], why)

    try:
        return len(run_cycle(settings, closed=opened, on_stood_down=stood_down, publish=publish))
    except CycleFailed as failed:
        get_run_logger().error("live cycle %s: %s", ", ".join(opened), failed)
        return 0


class PrefectHooks:
    """The engine's hooks as subflows and tasks of the engine's flow run.

    The engine's event loop runs in its own plain thread (a loop inside the flow's thread
    kept Prefect's run machinery from letting the stream tasks run); each hook runs in a
    copy of the flow's context, so what it starts is a child of the engine's flow run."""

    def __init__(self, settings: KestrelSettings, rt: Runtime) -> None:
        self.settings = settings
        self.config = settings.model_dump(mode="json")
        self.direct = DirectHooks(rt, holder="live engine")
        self.tables = TablePublisher()
        self._context = contextvars.copy_context()
        self.engine: LiveEngine | None = None
        self.telegram = telegram_settings(settings, None)
        self.pacer = DrainPacer(rt.store)

    def _in_flow[**P](self, fn: Callable[P, None], *args: P.args, **kw: P.kwargs) -> None:
        self._context.copy().run(fn, *args, **kw)

    def run_cycle(self, closed: Sequence[ClosedCandle]) -> None:
        self._in_flow(self._cycle, closed)

    def _cycle(self, closed: Sequence[ClosedCandle]) -> None:
        settings = load_effective(self.config, run="live-engine")  # `kestrel settings` changes
        with trading_mode(settings.mode):
            live_cycle(settings, get_runtime(settings), closed, self.tables)

    def run_sync(self, reason: str) -> None:
        self._in_flow(self._sync, reason)

    def _sync(self, reason: str) -> None:
        get_run_logger().info("order sync: %s", reason)
        order_sync(config=self.config, window_s=0.0)

    def run_monitor(self, reason: str) -> None:
        self._in_flow(self._monitor, reason)

    def _monitor(self, reason: str) -> None:
        logger = get_run_logger()
        with one_at_a_time("position-monitor", SLOT_WAIT_S) as held:
            if not held:
                logger.warning(
                    "monitor (%s): the position-monitor slot is busy past %.0f s; the engine "
                    "runs its own pass",
                    reason,
                    SLOT_WAIT_S,
                )
            report = live_monitor_task(self.direct.rt, self.direct.prices, reason)
        if report.exits:
            logger.info("monitor (%s): exits %s", reason, report.exits)

    def levels(self) -> list[Levels]:
        return self.direct.levels()

    def alive(self, now: float) -> str | None:
        """The heartbeat's line, or None when the engine's loop has not checked in lately."""
        engine = self.engine
        if engine is None:
            return "starting"
        if now - engine.last_check > STUCK_AFTER_S:
            return None
        stats = engine.stats
        return f"{stats.cycles} cycle(s), {stats.tick_triggers} tick trigger(s)"

    def drain_notifications(self) -> None:
        """The notifications deployment is paused while the engine runs: drain when due."""
        if telegram_missing(self.telegram) is not None:
            return
        why = self.pacer.due()
        if why is not None:
            self._in_flow(self._drain, why)

    def _drain(self, why: str) -> None:
        get_run_logger().info("notifications: %s", why)
        try:  # no retries here: the pacer retries, and the heartbeat must not wait on them
            drain_notifications_task.with_options(retries=0)(self.settings, self.telegram)
        finally:
            self.pacer.drained()


def engine_config(
    settings: KestrelSettings,
    exchange_id: str,
    wallet: LiveWallet,
    recycle: RecycleBound | None = None,
) -> EngineConfig:
    access = settings.exchange_api
    return EngineConfig(
        watchlist=tuple((i.symbol, i.timeframe) for i in settings.watchlist),
        exchange_id=exchange_id,
        sync_every_s=access.sync_window_s + 10,
        monitor_every_s=access.monitor_window_s + 10,
        account_stream=wallet.account_stream,
        match_timeframe=wallet.match_timeframe,
        batch_window_s=BATCH_WINDOW_S,
        recycle=recycle or RecycleBound(),
    )


async def _serve(
    settings: KestrelSettings,
    hooks: PrefectHooks,
    wallet: LiveWallet,
    run_for_s: float | None,
    recycle: RecycleBound | None = None,
) -> EngineStats:
    client = build_pro_client(settings.exchange, settings.exchange_api, wallet.credentials)
    try:
        await client.load_markets()
        rt = hooks.direct.rt
        engine = LiveEngine(
            engine_config(settings, rt.exchange.id, wallet, recycle),
            rt.store,
            CcxtProSource(client),
            hooks,
            on_price=hooks.direct.price,
        )
        hooks.engine = engine
        if run_for_s is not None:
            asyncio.get_running_loop().call_later(run_for_s, engine.stop_event.set)
        await engine.run()
        return engine.stats
    finally:
        await client.close()


@flow(name="kestrel-live-engine", log_prints=True)
def live_engine(
    config: dict[str, Any] | None = None,
    run_for_s: float | None = None,
    recycle: RecycleBound | None = None,
) -> str | State[Any]:
    """Run the live engine until cancelled (or for `run_for_s` seconds), on the REAL account
    or the DEMO paper wallet. A bad setting (REAL without keys, a DEMO paper market that is
    not live data) ends the run Cancelled with one WARNING (flows/_entry.py).

    `recycle`: bounds (cycles run, resident MiB) at which the run ends Completed between
    cycles, so its deployment starts a fresh process that resumes from the store."""
    return settle("live engine", lambda: _run_engine(config, run_for_s, recycle))


def _run_engine(
    config: dict[str, Any] | None, run_for_s: float | None, recycle: RecycleBound | None = None
) -> str:
    settings = load_effective(config, run="live-engine")
    with trading_mode(settings.mode):
        prepare_exchange_access(settings)
        rt = get_runtime(settings)
        wallet = live_wallet(settings, rt.feed)
        hooks = PrefectHooks(settings, rt)
        handover = Handover(
            engine_id=str(flow_run.get_id() or "local"),
            watchlist=frozenset((i.symbol, i.timeframe) for i in settings.watchlist),
        )
        keeper = Keeper(handover, alive=hooks.alive, drain=hooks.drain_notifications)
        result: list[EngineStats] = []
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                with trading_mode(settings.mode):  # a new thread starts without the flow's
                    result.append(asyncio.run(_serve(settings, hooks, wallet, run_for_s, recycle)))
            except BaseException as exc:
                errors.append(exc)

        engine_thread = threading.Thread(target=serve, name="live-engine-loop", daemon=True)
        with engine_active(keeper):
            engine_thread.start()
            engine_thread.join()
        if errors:
            raise errors[0]
        stats = result[0]
    summary = (
        f"{stats.cycles} cycle(s), {stats.missed} missed candle(s), {stats.duplicates} "
        f"duplicate(s), {stats.tick_triggers} tick trigger(s), {stats.polls} REST poll(s)"
    )
    if wallet.match_timeframe is not None:
        summary += f", {stats.fill_triggers} paper fill sync(s) (DEMO)"
    if stats.recycled is not None:
        summary += f"; ended for a fresh process: {stats.recycled}"
    get_run_logger().info("live engine stopped: %s", summary)
    return summary
