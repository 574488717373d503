"""The trading-cycle steps as Prefect tasks. Each one sets the trading mode from the settings
(task threads do not share the flow's context reliably) and delegates to kestrel.trading.cycle.

Analysis is one task in SOLO mode; in SWARM mode it is prepare -> one task per analyst
(concurrent on the flow's task runner) -> conclude. Analyst tasks never retry: a slow or
failing analyst abstains, it does not hold the cycle up.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel.analysis.base import AnalystInput, Vote
from kestrel.analysis.recordings import Recordings
from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.execution.lease import Lease
from kestrel.mode import trading_mode
from kestrel.models import AnalysisResult, CandleSeries, Decision, Order, RiskVerdict
from kestrel.runtime import get_runtime
from kestrel.store.recordings import StoreRecordings
from kestrel.strategy.resolve import SymbolPlan
from kestrel.strategy.settings import AnalystSpec
from kestrel.trading import cycle
from tasks.retry import RETRY_OPTIONS


def recordings_for(settings: KestrelSettings) -> Recordings | None:
    """The mode's store, where analysts that call out record their answers for backtests;
    None when the panel is only technical (nothing to record, no store opened)."""
    if all(spec.kind == "technical" for spec in settings.trading.analysis.panel()):
        return None
    with trading_mode(settings.mode):
        return StoreRecordings(get_runtime(settings).store)


@task(name="fetch", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def fetch_task(settings: KestrelSettings, item: WatchlistItem) -> CandleSeries:
    with trading_mode(settings.mode):
        return cycle.fetch_candles(get_runtime(settings), item)


@task(name="analyze", cache_policy=NO_CACHE)
def analyze_task(
    settings: KestrelSettings, plan: SymbolPlan, series: CandleSeries
) -> AnalysisResult:
    """SOLO: the one analyst, in this task."""
    return cycle.analyze_candles(
        series, plan.profile, settings.trading.analysis, recordings_for(settings)
    )


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


@task(name="risk", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def risk_task(settings: KestrelSettings, plan: SymbolPlan, analysis: AnalysisResult) -> RiskVerdict:
    with trading_mode(settings.mode):
        return cycle.assess_risk(get_runtime(settings), plan, analysis)


@task(name="decide", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def decide_task(
    settings: KestrelSettings, plan: SymbolPlan, analysis: AnalysisResult, verdict: RiskVerdict
) -> Decision:
    with trading_mode(settings.mode):
        return cycle.make_decision(get_runtime(settings), plan, analysis, verdict)


@task(name="execute", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def execute_task(
    settings: KestrelSettings, decision: Decision, lease: Lease | None = None
) -> Order | None:
    """Safe to retry: placement looks the client order id up before sending again. `lease`:
    the flow's holding of the symbol's lease (this task may run on another worker)."""
    with trading_mode(settings.mode):
        return cycle.execute(get_runtime(settings), decision, lease)
