"""The trading-cycle stages as Prefect tasks. Each one sets the trading mode from the settings
(task threads do not share the flow's context reliably) and delegates to kestrel.trading.batch
(stages over all of a cycle's symbols) or kestrel.trading.cycle (SWARM analysis steps).

A cycle is three task runs whatever its size: fetch (every symbol), analyze (every symbol;
in SWARM mode prepare -> one task per analyst, concurrent on the flow's task runner ->
conclude, per symbol) and trade (risk -> decide -> execute per symbol, in watchlist order,
each under its lease). A stage logs what it did per symbol under its own task run.

Stage parameters come wrapped in `quote` by the flow: Prefect would otherwise walk every
candle of every series looking for futures, which cost more than the stage itself. Stage
retries are safe: the `Progress` handed to every attempt says what is done (never redone) and,
for trade, each symbol's decision (re-placed, never re-decided; placement looks its client
order id up before sending). Analyst tasks never retry: a slow or failing analyst abstains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from kestrel.analysis.base import AnalystInput, Vote
from kestrel.analysis.recordings import Recordings
from kestrel.config.settings import KestrelSettings
from kestrel.mode import trading_mode
from kestrel.models import AnalysisResult, CandleSeries
from kestrel.runtime import get_runtime
from kestrel.store.recordings import StoreRecordings
from kestrel.strategy.resolve import SymbolPlan
from kestrel.strategy.settings import AnalystSpec
from kestrel.trading import batch, cycle
from kestrel.trading.batch import Progress, TradeProgress, Vet
from tasks.retry import RETRY_OPTIONS

RETRIES: int = RETRY_OPTIONS["retries"]


def stage_name(stage: str, plans: list[SymbolPlan]) -> str:
    """A stage's task run name: the stage and the symbols it covers (a few named)."""
    symbols = [plan.symbol for plan in plans]
    named = ",".join(symbols[:4]) + (f",+{len(symbols) - 4}" if len(symbols) > 4 else "")
    return f"{stage}-{named}"


def run_name(stage: str) -> Callable[..., str]:
    """The stage's task run name from its `plans` parameter, computed by Prefect when the run
    starts. Why not `with_options(task_run_name=...)` per call: that builds a new Task,
    reading the function's source, about as long as a stage's own work."""

    def name(parameters: dict[str, Any]) -> str:
        plans = parameters["plans"]
        return stage_name(stage, plans.unquote() if isinstance(plans, quote) else plans)

    return name


def recordings_for(settings: KestrelSettings) -> Recordings | None:
    """The mode's store, where analysts that call out record their answers for backtests;
    None when the panel is only technical (nothing to record, no store opened)."""
    if all(spec.kind == "technical" for spec in settings.trading.analysis.panel()):
        return None
    with trading_mode(settings.mode):
        return StoreRecordings(get_runtime(settings).store)


@task(name="indicators", cache_policy=NO_CACHE)
def prepare_task(plan: SymbolPlan, series: CandleSeries) -> AnalystInput:
    return cycle.prepare_analysis(series, plan.profile)


@task(name="analyst", cache_policy=NO_CACHE)
def analyst_task(settings: KestrelSettings, spec: AnalystSpec, data: AnalystInput) -> Vote:
    return cycle.consult_analyst(settings.trading.analysis, spec, data, recordings_for(settings))


@task(name="consensus", cache_policy=NO_CACHE)
def consensus_task(
    settings: KestrelSettings, data: AnalystInput, votes: list[Vote]
) -> AnalysisResult:
    return cycle.conclude_analysis(settings.trading.analysis, data, votes)


@task(name="fetch", task_run_name=run_name("fetch"), cache_policy=NO_CACHE, **RETRY_OPTIONS)
def fetch_stage(
    settings: KestrelSettings,
    plans: list[SymbolPlan],
    progress: Progress[CandleSeries],
    vet: Vet | None = None,
) -> Progress[CandleSeries]:
    """Every symbol's closed candles (ops.max_workers at a time); retried on transient errors
    for the symbols not fetched yet."""
    may_retry = progress.attempt(RETRIES)
    with trading_mode(settings.mode):
        return batch.fetch_all(
            get_runtime(settings),
            plans,
            progress,
            may_retry=may_retry,
            workers=settings.ops.max_workers,
            vet=vet,
            logger=get_run_logger(),
        )


@task(name="analyze", task_run_name=run_name("analyze"), cache_policy=NO_CACHE)
def analyze_stage(
    settings: KestrelSettings,
    plans: list[SymbolPlan],
    fetched: Progress[CandleSeries],
    progress: Progress[AnalysisResult],
) -> Progress[AnalysisResult]:
    """SOLO: every fetched symbol's analysis, in this task."""
    with trading_mode(settings.mode):
        return batch.analyze_all(
            get_runtime(settings),
            plans,
            fetched.done,
            progress,
            recordings_for(settings),
            logger=get_run_logger(),
        )


@task(name="trade", task_run_name=run_name("trade"), cache_policy=NO_CACHE, **RETRY_OPTIONS)
def trade_stage(
    settings: KestrelSettings,
    plans: list[SymbolPlan],
    analyses: dict[str, AnalysisResult],
    progress: TradeProgress,
    run: str,
) -> TradeProgress:
    """Risk -> decide -> execute per symbol in watchlist order, each under its lease held as
    `run`; a retry resumes at the first symbol not done and never decides one twice."""
    may_retry = progress.attempt(RETRIES)
    with trading_mode(settings.mode):
        return batch.trade_all(
            get_runtime(settings),
            plans,
            analyses,
            progress,
            run=run,
            wait_s=settings.ops.cycle_lock_timeout_s,
            may_retry=may_retry,
            logger=get_run_logger(),
        )
