"""The trading cycle: fetch -> analyze -> risk -> decide -> execute, over the watchlist.

Three task runs per cycle, each a stage over all of its symbols (kestrel.trading.batch):
fetch (concurrent across symbols), analyze (in SWARM mode one task per analyst and symbol,
concurrent) and trade: risk -> decide -> execute one symbol at a time, in watchlist order, so
that each symbol's exposure, position count and balance checks see the orders the symbols
before it just placed. Why stages rather than a task per symbol and step: each task run costs
Prefect a few milliseconds, about what a symbol's whole step costs, and a cycle of ten symbols
paid it fifty times. Each stage logs its symbols' outcomes under its task run. One symbol
failing (bad candles, an exchange outage past its retries) does not stop the others, and fails
the run at the end naming it. Each run publishes a table artifact of its decisions with their
reason codes.

Risk -> decide -> execute of a symbol run while this run holds the symbol's lease in the
store (kestrel.execution.lease): whatever else trades the symbol at the same time (another cycle
from
any deployment, machine or `kestrel cycle`, a manual order, the monitor's exits) waits or
stands down, so what risk read is still true when the order goes out. If the lease stays
taken past `ops.cycle_lock_timeout_s`, the symbol stands down with a SKIP_SYMBOL_BUSY
decision naming the run that holds it.

`trading_cycle` is the one flow of the job: prefect.yaml deploys it (one deployment per
watchlist) and `kestrel cycle` runs it. It resolves its settings through flows/_entry.py, runs
its symbols on the task runner the settings choose (threads, or Dask for a cluster) and takes
a per-watchlist Prefect lock, so two runs of one watchlist normally run one after the other.
Correctness does not rest on that lock (`kestrel cycle` with another watchlist name, a manual
order or a second server never share it): the symbol leases above decide, and name, who
trades a symbol when two runs meet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, cast

from prefect import flow, get_client, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State
from prefect.concurrency.sync import concurrency
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.tasks import Task
from prefect.utilities.annotations import quote

from blocks.settings import BlockRefs
from flows._entry import JobFailed, done, entry_run, running_holders, settle
from flows.logs import ORDER_FILTER
from flows.params import SettingsOverrides
from flows.runners import on_task_runner, task_runner_for
from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.live.direct import closed_candle_vet
from kestrel.mode import TradingMode
from kestrel.models import AnalysisResult, CandleSeries, Decision, ReasonCode
from kestrel.risk.controls import emergency_stop_state
from kestrel.store import open_store
from kestrel.strategy.resolve import SymbolPlan, resolve_plans
from kestrel.trading.batch import Progress, TradeProgress, failures
from kestrel.trading.start import start_cycle
from tasks.trading import (
    analyst_task,
    analyze_stage,
    consensus_task,
    fetch_stage,
    prepare_task,
    trade_stage,
)

FLOW_NAME = "kestrel-trading-cycle"
DEFAULT_WATCHLIST = "default"


#: publishes a cycle's decisions table: (settings, decisions, failures, data source)
Publish = Callable[[KestrelSettings, list[Decision], list[str], str], None]


class CycleFailed(JobFailed):
    """Some symbols failed (each named, already logged); the others were traded."""


def later[T](future: PrefectFuture[T]) -> T:
    """Prefect resolves a future passed as a task argument; this says so to the type checker."""
    return cast(T, future)


def quoted[T](value: T) -> T:
    """`value` wrapped so Prefect passes it to the task as is, without walking into it
    looking for futures (for a series of candles that walk costs more than the task)."""
    return cast(T, quote(value))


def run_stage[R](settings: KestrelSettings, stage: Task[..., R], *args: Any) -> R:
    """One stage as one task run. On threads the stage runs in the flow's thread (it is
    sequential anyway; fetching fans out inside) with its arguments `quote`d (Prefect would
    walk every candle looking for futures); on Dask it is submitted to a worker as is (a
    quote does not survive the trip)."""
    if settings.ops.task_runner == "dask":
        return stage.submit(*args).result()
    return stage(*[quoted(arg) for arg in args])


def swarm_analyses(
    settings: KestrelSettings, plans: list[SymbolPlan], fetched: Progress[CandleSeries]
) -> Progress[AnalysisResult]:
    """SWARM: per symbol prepare -> one task per analyst (concurrent) -> consensus."""
    analysis = settings.trading.analysis
    futures: list[tuple[SymbolPlan, PrefectFuture[AnalysisResult]]] = []
    for plan in plans:
        if plan.symbol not in fetched.done:
            continue
        data = prepare_task.with_options(task_run_name=f"indicators-{plan.symbol}").submit(
            plan, quoted(fetched.done[plan.symbol])
        )
        votes = [
            analyst_task.with_options(task_run_name=f"analyst-{spec.label}-{plan.symbol}").submit(
                settings, spec, later(data)
            )
            for spec in analysis.panel()
        ]
        conclusion = consensus_task.with_options(task_run_name=f"consensus-{plan.symbol}").submit(
            settings, later(data), [later(vote) for vote in votes]
        )
        futures.append((plan, conclusion))
    progress: Progress[AnalysisResult] = Progress()
    for plan, future in futures:
        future.wait()
        if future.state.is_completed():
            progress.done[plan.symbol] = future.result()
        else:
            progress.failed[plan.symbol] = future.state.message or "analysis failed"
    return progress


def run_cycle(
    settings: KestrelSettings,
    closed: Mapping[str, int] | None = None,
    on_stood_down: Callable[[SymbolPlan, str], None] | None = None,
    publish: Publish | None = None,
) -> list[Decision]:
    """The cycle as three stage tasks (fetch, analyze, trade) over every symbol; usable from
    any flow (the scheduled one, `kestrel cycle`, the live engine's run). `closed`: the live
    engine's candles that just closed (symbol -> open time): only those symbols, and only
    on series that confirm that candle (`on_stood_down` is told about a refused one).

    An unknown strategy name, symbol or timeframe raises ConfigError before any task runs;
    without market data the cycle stands down (an event and the decisions table say why).
    A symbol failing in any stage is named and the others go on; CycleFailed at the end."""
    publish = publish or publish_decisions
    plans = resolve_plans(settings)
    if closed is not None:
        plans = [plan for plan in plans if plan.symbol in closed]
    start = start_cycle(settings)
    logger = get_run_logger()
    if start.stood_down is not None:
        logger.warning("the cycle stands down: %s", start.stood_down)
        publish(settings, [], [f"*: BLOCKED_NO_MARKET_DATA: {start.stood_down}"], "none")
        return []
    logger.info("market data: %s", start.data_source)
    vet = closed_candle_vet(closed) if closed is not None else None
    fetched = run_stage(settings, fetch_stage, settings, plans, Progress(), vet)
    if on_stood_down is not None:
        for plan in plans:
            if plan.symbol in fetched.stood_down:
                on_stood_down(plan, fetched.stood_down[plan.symbol])
    ready = [plan for plan in plans if plan.symbol in fetched.done]
    if settings.trading.analysis.mode == "SOLO":
        analyzed = run_stage(settings, analyze_stage, settings, ready, fetched, Progress())
    else:
        analyzed = swarm_analyses(settings, ready, fetched)
    run = f"trading-cycle run {flow_run.get_name() or 'local'} ({flow_run.get_id() or 'no id'})"
    decided = [plan for plan in ready if plan.symbol in analyzed.done]
    traded = run_stage(
        settings, trade_stage, settings, decided, analyzed.done, TradeProgress(), run
    )
    decisions = [traded.done[plan.symbol] for plan in plans if plan.symbol in traded.done]
    failed = failures(plans, fetched, analyzed, traded)
    publish(settings, decisions, failed, start.data_source)
    if failed:  # one line for the run, from `settle`
        raise CycleFailed(f"{len(failed)} symbol(s) failed: " + "; ".join(failed))
    return decisions


def _reason_values(decision: Decision, code: str, key: str) -> str:
    for reason in decision.reasons:
        if reason.code.value == code and key in reason.values:
            return str(reason.values[key])
    return ""


def decision_rows(decisions: list[Decision], data_source: str) -> list[dict[str, str]]:
    """One row per decision; `data` names the prices it was made on (live / replay /
    SIMULATED), so a table of paper trades on invented prices can never pass for real."""
    return [
        {
            "symbol": d.symbol,
            "data": data_source,
            "profile": d.profile,
            "action": d.action.value,
            "amount": str(d.amount),
            "price": str(d.price or ""),
            "stop_loss": str(d.stop_loss or ""),
            "take_profit": str(d.take_profit or ""),
            "confidence": _reason_values(d, "SIGNAL_BUY", "confidence")
            or _reason_values(d, "SIGNAL_SELL", "confidence")
            or _reason_values(d, "LOW_CONFIDENCE", "confidence"),
            "reasons": ", ".join(r.code.value for r in d.reasons),
            "detail": "; ".join(r.detail for r in d.reasons if r.detail)[:500],
            "alert": (
                ("emitted " if d.alert.emitted else "held: ")
                + ", ".join(c.value for c in d.alert.codes)
                if d.alert
                else ""
            ),
            "client_order_id": d.client_order_id or "",
        }
        for d in decisions
    ]


def publish_decisions(
    settings: KestrelSettings, decisions: list[Decision], failures: list[str], data_source: str
) -> None:
    """The cycle's table artifact (one version per cycle under a per-mode key)."""
    rows = decision_rows(decisions, data_source)
    rows += [{"symbol": failure.partition(":")[0], "data": data_source, "action": "FAILED",
              "detail": failure} for failure in failures]  # fmt: skip
    create_table_artifact(
        rows,
        key=f"cycle-decisions-{settings.mode.value.lower()}",
        description="Decisions of the latest trading cycle, with their reason codes; market "
        f"data: {data_source}",
    )


def lock_name(mode: TradingMode, watchlist: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", watchlist.lower()).strip("-") or DEFAULT_WATCHLIST
    return f"kestrel-cycle-{mode.value.lower()}-{slug}"


@contextmanager
def watchlist_lock(name: str, timeout_s: float) -> Iterator[bool]:
    """Hold the watchlist's global concurrency limit (created with one slot if missing);
    yields False if another run holds it for longer than `timeout_s`. The lease expires if
    the holder dies, so a crashed run never blocks its watchlist for good."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True))
        except TimeoutError:
            yield False
            return
        yield True


def log_decisions(settings: KestrelSettings, decisions: list[Decision]) -> None:
    """One line per decision; a line about an order carries its mode, symbol and id."""
    logger = get_run_logger()
    store = open_store(settings, settings.mode)
    try:
        for decision in decisions:
            codes = ", ".join(reason.code.value for reason in decision.reasons)
            if decision.client_order_id is None:
                logger.info("%s: %s (%s)", decision.symbol, decision.action.value, codes)
                continue
            order = store.get_order(decision.client_order_id)
            if order is not None:
                ORDER_FILTER.remember([order])
            logger.info(
                "%s %s %s: order %s %s (%s)",
                decision.action.value,
                decision.amount,
                decision.symbol,
                decision.client_order_id,
                f"{order.status.value} via {order.status_source.value}" if order else "not stored",
                codes,
            )
    finally:
        store.close()


def stopped_message(settings: KestrelSettings, decisions: list[Decision]) -> str | None:
    """The one cycle-level line while the emergency stop is active (None when it is not)."""
    store = open_store(settings, settings.mode)
    try:
        stop = emergency_stop_state(store)
    finally:
        store.close()
    if not stop.active:
        return None
    blocked = [
        d.symbol
        for d in decisions
        if any(r.code is ReasonCode.BLOCKED_EMERGENCY_STOP for r in d.reasons)
    ]
    held = f"signals held for {', '.join(blocked)}" if blocked else "no signal to hold"
    return (
        f"emergency stop active ({stop.reason or 'no reason given'}, set by {stop.set_by or '?'})"
        f": no order placed this cycle, {held}; `kestrel resume` or the emergency-stop "
        "deployment with action resume lifts it"
    )


def cycle_over(settings: KestrelSettings, watchlist: str) -> list[Decision] | State[Any]:
    """The cycle under the watchlist's Prefect lock, on the task runner the settings choose."""
    logger = get_run_logger()
    name = lock_name(settings.mode, watchlist)
    with watchlist_lock(name, settings.ops.cycle_lock_timeout_s) as held:
        if not held:  # a busy server can be slow to grant it: the symbol leases decide
            logger.warning(
                "%s holds %s; going on: each symbol's lease says who trades it",
                running_holders(FLOW_NAME),
                name,
            )
        with on_task_runner(task_runner_for(settings.ops)):
            decisions = run_cycle(settings)
    log_decisions(settings, decisions)
    message = stopped_message(settings, decisions)
    if message is not None:
        logger.warning(message)
    return done(decisions, message)


@flow(name=FLOW_NAME, log_prints=True)
def trading_cycle(
    watchlist: str = DEFAULT_WATCHLIST,
    items: list[WatchlistItem] | None = None,
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
) -> list[Decision] | State[Any]:
    """One cycle over a watchlist: fetch -> analyze -> risk -> decide -> execute per symbol.

    `watchlist` names it (lock, dashboards); `items` are its symbols (empty: the trading-config
    block's, kestrel.toml's or the environment's watchlist); `config` overrides any other
    setting except the installation's mode and REAL whitelist."""
    watch = {"watchlist": [i.model_dump(mode="json") for i in items]} if items else None

    def body() -> list[Decision] | State[Any]:
        with entry_run(FLOW_NAME, blocks, watch, config, dashboards=f"watchlist {watchlist}") as s:
            return cycle_over(s, watchlist)

    return settle("trading cycle", body)
