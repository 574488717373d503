"""`live-engine`: one long-lived process that streams market data and account events
(kestrel.live over ccxt.pro) and runs, in-process, a trading cycle when a symbol's candle
closes, the order sync when account events arrive (and every exchange_api.sync_window_s as
a safety net), and the position monitor when a tick crosses a level (and periodically).

Each of those is a subflow or task of this flow run, so the Prefect UI shows every cycle,
sync and monitor pass the engine ran, with state and logs. Imports happen once, at start.

The monitor never waits on Prefect: it first asks for the position-monitor deployment's
concurrency slot (so a scheduled run and the engine do not both pass at once) for at most
`SLOT_WAIT_S`; when the slot cannot be had, the engine runs its own pass anyway and logs why.
Exits are safe either way: every exit is placed under the symbol's lease in the store.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State

from flows._entry import settle
from flows.trading_cycle import run_cycle
from flows.upkeep import order_sync
from kestrel.books.wallet import real_credentials
from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError
from kestrel.live.client import build_pro_client
from kestrel.live.direct import DirectHooks
from kestrel.live.engine import EngineConfig, EngineStats, LiveEngine
from kestrel.live.recycle import RecycleBound
from kestrel.live.source import CcxtProSource
from kestrel.live.ticks import Levels
from kestrel.mode import TradingMode, trading_mode
from kestrel.operator.live import load_effective
from kestrel.runtime import Runtime, get_runtime
from tasks.live import live_monitor_task
from tasks.upkeep import one_at_a_time, prepare_exchange_access

log = logging.getLogger(__name__)
SLOT_WAIT_S = 2.0


@flow(name="live-cycle", log_prints=True)
def live_cycle(config: dict[str, Any], symbol: str, timeframe: str, open_time: int) -> int:
    """The trading cycle for one symbol whose candle just closed; returns decisions made."""
    settings = load_effective(config, run="live-cycle")
    one = [i for i in settings.watchlist if i.symbol == symbol and i.timeframe == timeframe]
    with trading_mode(settings.mode):
        return len(run_cycle(settings.model_copy(update={"watchlist": one})))


class PrefectHooks:
    """The engine's hooks as subflows and tasks of the engine's flow run.

    The engine's event loop runs in its own plain thread (a loop inside the flow's thread
    kept Prefect's run machinery from letting the stream tasks run); each hook runs in a
    copy of the flow's context, so what it starts is a child of the engine's flow run."""

    def __init__(self, settings: KestrelSettings, rt: Runtime) -> None:
        self.settings = settings
        self.config = settings.model_dump(mode="json")
        self.direct = DirectHooks(rt, holder="live engine")
        self._context = contextvars.copy_context()

    def _in_flow[**P](self, fn: Callable[P, None], *args: P.args, **kw: P.kwargs) -> None:
        self._context.copy().run(fn, *args, **kw)

    def run_cycle(self, symbol: str, timeframe: str, open_time: int) -> None:
        name = f"cycle-{symbol}-{timeframe}-{open_time}"
        self._in_flow(self._cycle, name, symbol, timeframe, open_time)

    def _cycle(self, name: str, symbol: str, timeframe: str, open_time: int) -> None:
        live_cycle.with_options(flow_run_name=name)(self.config, symbol, timeframe, open_time)

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


def engine_config(
    settings: KestrelSettings, exchange_id: str, recycle: RecycleBound | None = None
) -> EngineConfig:
    access = settings.exchange_api
    return EngineConfig(
        watchlist=tuple((i.symbol, i.timeframe) for i in settings.watchlist),
        exchange_id=exchange_id,
        sync_every_s=access.sync_window_s + 10,
        monitor_every_s=access.monitor_window_s + 10,
        recycle=recycle or RecycleBound(),
    )


async def _serve(
    settings: KestrelSettings,
    hooks: PrefectHooks,
    run_for_s: float | None,
    recycle: RecycleBound | None = None,
) -> EngineStats:
    client = build_pro_client(settings.exchange, settings.exchange_api, real_credentials(settings))
    try:
        await client.load_markets()
        rt = hooks.direct.rt
        engine = LiveEngine(
            engine_config(settings, rt.exchange.id, recycle),
            rt.store,
            CcxtProSource(client),
            hooks,
            on_price=hooks.direct.price,
        )
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
    """Run the live engine until cancelled (or for `run_for_s` seconds). A bad setting (a
    mode other than REAL included) ends the run Cancelled with one WARNING (flows/_entry.py).

    `recycle`: bounds (cycles run, resident MiB) at which the run ends Completed between
    cycles, so its deployment starts a fresh process that resumes from the store."""
    return settle("live engine", lambda: _run_engine(config, run_for_s, recycle))


def _run_engine(
    config: dict[str, Any] | None, run_for_s: float | None, recycle: RecycleBound | None = None
) -> str:
    settings = load_effective(config, run="live-engine")
    if settings.mode is not TradingMode.REAL:
        raise ConfigError(
            "the live engine streams from the exchange: it runs in REAL mode (point "
            "exchange_api.url and exchange_api.ws_url at the emulator to rehearse)"
        )
    with trading_mode(settings.mode):
        prepare_exchange_access(settings)
        rt = get_runtime(settings)
        hooks = PrefectHooks(settings, rt)
        result: list[EngineStats] = []
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                with trading_mode(settings.mode):  # a new thread starts without the flow's
                    result.append(asyncio.run(_serve(settings, hooks, run_for_s, recycle)))
            except BaseException as exc:
                errors.append(exc)

        engine_thread = threading.Thread(target=serve, name="live-engine-loop", daemon=True)
        engine_thread.start()
        engine_thread.join()
        if errors:
            raise errors[0]
        stats = result[0]
    summary = (
        f"{stats.cycles} cycle(s), {stats.missed} missed candle(s), {stats.duplicates} "
        f"duplicate(s), {stats.tick_triggers} tick trigger(s), {stats.polls} REST poll(s)"
    )
    if stats.recycled is not None:
        summary += f"; ended for a fresh process: {stats.recycled}"
    get_run_logger().info("live engine stopped: %s", summary)
    return summary
