"""The trading cycle: fetch -> analyze -> risk -> decide -> execute, per watchlist symbol.

Fetching and analysis run concurrently across symbols (and, in SWARM mode, across the
analysts of each symbol). Risk -> decide -> execute then run one symbol at a time, in
watchlist order, so that each symbol's exposure, position count and balance checks see the
orders the symbols before it just placed. One symbol failing (bad candles, an exchange outage
past its retries) does not stop the others, and fails the run at the end. Each run publishes
a table artifact of its decisions with their reason codes.

Risk -> decide -> execute of a symbol run while this run holds the symbol's lease in the
store (kestrel.execution.lease): whatever else trades the symbol at the same time (another cycle
from
any deployment, machine or `kestrel cycle`, a manual order, the monitor's exits) waits or
stands down, so what risk read is still true when the order goes out. If the lease stays
taken past `ops.cycle_lock_timeout_s`, the symbol stands down with a SKIP_SYMBOL_BUSY
decision naming the run that holds it.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from kestrel.config.settings import KestrelSettings
from kestrel.errors import KestrelError
from kestrel.execution.lease import Lease, LeaseBusy, symbol_lease
from kestrel.mode import trading_mode
from kestrel.models import AnalysisResult, Decision
from kestrel.operator.live import load_effective
from kestrel.runtime import get_runtime
from kestrel.strategy.resolve import SymbolPlan, resolve_plans
from kestrel.trading import cycle
from kestrel.trading.start import start_cycle
from tasks.trading import (
    analyst_task,
    analyze_task,
    consensus_task,
    decide_task,
    execute_task,
    fetch_task,
    prepare_task,
    risk_task,
)


class CycleFailed(KestrelError):
    """Some symbols' cycles failed: the run must show as failed (the message lists them)."""


def later[T](future: PrefectFuture[T]) -> T:
    """Prefect resolves a future passed as a task argument; this says so to the type checker."""
    return cast(T, future)


def submit_analysis(settings: KestrelSettings, plan: SymbolPlan) -> PrefectFuture[AnalysisResult]:
    analysis = settings.trading.analysis
    series = fetch_task.with_options(task_run_name=f"fetch-{plan.symbol}").submit(
        settings, plan.item
    )
    if analysis.mode == "SOLO":
        return analyze_task.with_options(task_run_name=f"analyze-{plan.symbol}").submit(
            settings, plan, later(series)
        )
    data = prepare_task.with_options(task_run_name=f"indicators-{plan.symbol}").submit(
        plan, later(series)
    )
    votes = [
        analyst_task.with_options(task_run_name=f"analyst-{spec.label}-{plan.symbol}").submit(
            settings, spec, later(data)
        )
        for spec in analysis.panel()
    ]
    return consensus_task.with_options(task_run_name=f"consensus-{plan.symbol}").submit(
        settings, later(data), [later(vote) for vote in votes]
    )


def run_cycle(settings: KestrelSettings) -> list[Decision]:
    """Every symbol's analysis concurrently, then its trade in turn; usable from any flow.
    An unknown strategy name, symbol or timeframe raises ConfigError before any task runs;
    without market data the cycle stands down (an event and the decisions table say why)."""
    plans = resolve_plans(settings)
    start = start_cycle(settings)
    if start.stood_down is not None:
        get_run_logger().warning("the cycle stands down: %s", start.stood_down)
        publish_decisions(settings, [], [f"*: BLOCKED_NO_MARKET_DATA: {start.stood_down}"], "none")
        return []
    get_run_logger().info("market data: %s", start.data_source)
    analyses = [(plan, submit_analysis(settings, plan)) for plan in plans]
    rt = get_runtime(settings)
    run = f"trading-cycle run {flow_run.get_name() or 'local'} ({flow_run.get_id() or 'no id'})"
    decisions: list[Decision] = []
    failures: list[str] = []
    for plan, analysis in analyses:
        analysis.wait()
        if not analysis.state.is_completed():
            failures.append(f"{plan.symbol}: {analysis.state.message}")
            continue
        wait_s = settings.ops.cycle_lock_timeout_s
        try:
            with symbol_lease(rt.store, rt.exchange.id, plan.symbol, run, wait_s=wait_s) as held:
                decision, failure = trade(settings, plan, analysis, held.lease)
        except LeaseBusy as busy:
            get_run_logger().warning("%s; this run stands down on %s", busy, plan.symbol)
            decision, failure = cycle.stand_down(rt, plan, analysis.result(), busy), None
        if decision is not None:
            decisions.append(decision)
        if failure is not None:
            failures.append(f"{plan.symbol}: {failure}")
    publish_decisions(settings, decisions, failures, start.data_source)
    if failures:
        get_run_logger().error("cycle failures: %s", "; ".join(failures))
        raise CycleFailed("; ".join(failures))
    return decisions


def trade(
    settings: KestrelSettings,
    plan: SymbolPlan,
    analysis: PrefectFuture[AnalysisResult],
    lease: Lease,
) -> tuple[Decision | None, str | None]:
    """Risk -> decide -> execute for one symbol under the caller's `lease` (passed to the
    execute task, which may run on another worker); the decision, and why the order step
    failed (None if it did not)."""
    verdict = risk_task.with_options(task_run_name=f"risk-{plan.symbol}").submit(
        settings, plan, later(analysis)
    )
    decision = decide_task.with_options(task_run_name=f"decide-{plan.symbol}").submit(
        settings, plan, later(analysis), later(verdict)
    )
    order = execute_task.with_options(task_run_name=f"execute-{plan.symbol}").submit(
        settings, later(decision), lease
    )
    order.wait()
    decision.wait()  # on Dask a future's state is read from the API and may lag
    order_state = order.state
    decided = decision.result() if decision.state.is_completed() else None
    return decided, None if order_state.is_completed() else order_state.message


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


@flow(name="trading-cycle", log_prints=True)
def trading_cycle(config: dict[str, Any] | None = None) -> list[Decision]:
    """One cycle over the watchlist. `config` overrides settings (env / kestrel.toml)."""
    settings = load_effective(config, run="trading-cycle")
    with trading_mode(settings.mode):
        return run_cycle(settings)
