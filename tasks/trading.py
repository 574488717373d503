"""The trading-cycle steps as Prefect tasks. Each one sets the trading mode from the settings
(task threads do not share the flow's context reliably) and delegates to kestrel.cycle."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel import cycle
from kestrel.mode import trading_mode
from kestrel.models import AnalysisResult, CandleSeries, Decision, Order, RiskVerdict
from kestrel.runtime import get_runtime
from kestrel.settings import KestrelSettings, WatchlistItem
from tasks.retry import RETRY_OPTIONS


@task(name="fetch", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def fetch_task(settings: KestrelSettings, item: WatchlistItem) -> CandleSeries:
    with trading_mode(settings.mode):
        return cycle.fetch_candles(get_runtime(settings), item)


@task(name="analyze", cache_policy=NO_CACHE)
def analyze_task(series: CandleSeries) -> AnalysisResult:
    return cycle.analyze_candles(series)


@task(name="risk", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def risk_task(
    settings: KestrelSettings, item: WatchlistItem, analysis: AnalysisResult
) -> RiskVerdict:
    with trading_mode(settings.mode):
        return cycle.assess_risk(get_runtime(settings), item, analysis)


@task(name="decide", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def decide_task(
    settings: KestrelSettings, item: WatchlistItem, analysis: AnalysisResult, verdict: RiskVerdict
) -> Decision:
    with trading_mode(settings.mode):
        return cycle.make_decision(get_runtime(settings), item, analysis, verdict)


@task(name="execute", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def execute_task(settings: KestrelSettings, decision: Decision) -> Order | None:
    """Safe to retry: placement looks the client order id up before sending again."""
    with trading_mode(settings.mode):
        return cycle.execute(get_runtime(settings), decision)
