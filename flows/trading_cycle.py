"""The trading cycle: fetch -> analyze -> risk -> decide -> execute, per watchlist symbol.

Symbols run concurrently on the flow's task runner; one symbol failing (bad candles, an
exchange outage past its retries) does not stop the others, and fails the run at the end.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture

from kestrel.mode import trading_mode
from kestrel.models import Decision
from kestrel.settings import KestrelSettings, load_settings
from tasks.trading import analyze_task, decide_task, execute_task, fetch_task, risk_task


class CycleFailed(Exception):
    pass


def later[T](future: PrefectFuture[T]) -> T:
    """Prefect resolves a future passed as a task argument; this says so to the type checker."""
    return cast(T, future)


def run_cycle(settings: KestrelSettings) -> list[Decision]:
    """Submit every symbol's chain of tasks, then gather; usable from any flow."""
    chains: list[tuple[str, PrefectFuture[Decision], PrefectFuture[Any]]] = []
    for item in settings.watchlist:
        series = fetch_task.submit(settings, item)
        analysis = analyze_task.submit(later(series))
        verdict = risk_task.submit(settings, item, later(analysis))
        decision = decide_task.submit(settings, item, later(analysis), later(verdict))
        order = execute_task.submit(settings, later(decision))
        chains.append((item.symbol, decision, order))
    decisions: list[Decision] = []
    failures: list[str] = []
    for symbol, decision_future, order_future in chains:
        order_state = order_future.wait() or order_future.state
        decision_state = decision_future.state
        if decision_state.is_completed():
            decisions.append(decision_future.result())
        if not order_state.is_completed():
            failures.append(f"{symbol}: {order_state.message}")
    if failures:
        get_run_logger().error("cycle failures: %s", "; ".join(failures))
        raise CycleFailed("; ".join(failures))
    return decisions


def decision_rows(decisions: list[Decision]) -> list[dict[str, str]]:
    return [
        {
            "symbol": d.symbol,
            "action": d.action.value,
            "amount": str(d.amount),
            "price": str(d.price or ""),
            "reasons": ", ".join(r.code.value for r in d.reasons),
            "detail": "; ".join(r.detail for r in d.reasons if r.detail),
            "client_order_id": d.client_order_id or "",
        }
        for d in decisions
    ]


@flow(name="trading-cycle", log_prints=True)
def trading_cycle(config: dict[str, Any] | None = None) -> list[Decision]:
    """One cycle over the watchlist. `config` overrides settings (env / kestrel.toml)."""
    settings = load_settings(**(config or {}))
    with trading_mode(settings.mode):
        decisions = run_cycle(settings)
    create_table_artifact(
        decision_rows(decisions),
        key=f"cycle-decisions-{settings.mode.value.lower()}",
        description="Decisions of the latest trading cycle, with their reason codes",
    )
    return decisions
