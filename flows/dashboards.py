"""The dashboards as Prefect artifacts: Open Orders, Executed Orders, Monitoring, Audit and
Portfolio, one set per trading mode, refreshed at the end of every deployment run (and by
the `kestrel-dashboards` flow on demand). Rows come from kestrel/reporting/dashboards.py.

Artifact keys are stable (`kestrel-<name>-<mode>`): the Prefect UI's Artifacts page shows the
latest version of each and keeps the earlier ones as history.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from blocks.settings import BlockRefs, exported, resolve_settings
from kestrel.config.settings import KestrelSettings
from kestrel.errors import MarketDataUnavailable
from kestrel.mode import TradingMode, trading_mode
from kestrel.reporting.dashboards import (
    Snapshot,
    audit_rows,
    executed_order_rows,
    monitoring_markdown,
    open_order_rows,
    portfolio_rows,
    take_snapshot,
)
from kestrel.runtime import get_runtime
from kestrel.store import open_store

DASHBOARDS = ("open-orders", "executed-orders", "monitoring", "audit", "portfolio")


def artifact_key(name: str, mode: TradingMode | str) -> str:
    return f"kestrel-{name}-{TradingMode(mode).value.lower()}"


def publish_snapshot(snapshot: Snapshot, rows: int) -> dict[str, str]:
    """Create one artifact per dashboard; returns {dashboard: key}."""
    mode = snapshot.mode
    suffix = f" ({snapshot.label})" if snapshot.label else ""
    open_rows = open_order_rows(snapshot)
    executed = executed_order_rows(snapshot, rows)
    audit = audit_rows(snapshot, rows)
    portfolio = portfolio_rows(snapshot)
    keys = {name: artifact_key(name, mode) for name in DASHBOARDS}
    create_table_artifact(
        open_rows,
        key=keys["open-orders"],
        description=f"{mode.value} open orders: {len(open_rows)} NEW / OPEN / PARTIALLY_FILLED, "
        f"stop-loss and take-profit included{suffix}",
    )
    create_table_artifact(
        executed,
        key=keys["executed-orders"],
        description=f"{mode.value} executed orders (FILLED / CANCELED), newest first, with the "
        f"exchange truth that settled each (status_source){suffix}",
    )
    create_markdown_artifact(
        monitoring_markdown(snapshot),
        key=keys["monitoring"],
        description=f"{mode.value} monitoring: mode, gates, equity, PnL, latest signals{suffix}",
    )
    create_table_artifact(
        audit,
        key=keys["audit"],
        description=f"{mode.value} audit trail: every event with its reasons, newest first "
        f"(last {len(audit)}){suffix}",
    )
    create_table_artifact(
        portfolio,
        key=keys["portfolio"],
        description=f"{mode.value} portfolio: positions, PnL (gross) and fees{suffix}",
    )
    return keys


@task(name="publish-dashboards", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def publish_dashboards_task(
    settings: KestrelSettings, label: str = "", with_exchange: bool = True
) -> dict[str, str]:
    watchlist = [item.symbol for item in settings.watchlist]
    with trading_mode(settings.mode):
        try:
            rt = get_runtime(settings)
        except MarketDataUnavailable as exc:  # the books still show, and say why no prices
            store = open_store(settings, settings.mode)
            try:
                snapshot = take_snapshot(
                    store,
                    watchlist=watchlist,
                    label=label,
                    max_events=settings.ops.dashboard_rows,
                    data_source=f"NONE: {exc}",
                )
            finally:
                store.close()
        else:
            snapshot = take_snapshot(
                rt.store,
                exchange=rt.exchange if with_exchange else None,
                watchlist=watchlist,
                label=label,
                max_events=settings.ops.dashboard_rows,
                data_source=rt.data_source,
            )
    return publish_snapshot(snapshot, settings.ops.dashboard_rows)


def publish_dashboards(
    settings: KestrelSettings, label: str = "", with_exchange: bool = True
) -> dict[str, str]:
    """Refresh the dashboards from inside a flow; a failure is logged, never raised, so a
    dashboard problem cannot fail (or mask the outcome of) the run it follows."""
    try:
        return publish_dashboards_task(settings, label, with_exchange)
    except Exception as exc:
        get_run_logger().warning("dashboards not refreshed: %s: %s", type(exc).__name__, exc)
        return {}


@flow(name="kestrel-dashboards", log_prints=True)
def dashboards(
    blocks: BlockRefs | None = None,
    config: dict[str, Any] | None = None,
    with_exchange: bool = True,
) -> dict[str, str]:
    """Refresh every dashboard now (they also refresh after every deployment run)."""
    resolved = resolve_settings(blocks, config, run="kestrel-dashboards")
    with exported(resolved.secret_env):
        keys = publish_dashboards_task(resolved.settings, "refresh", with_exchange)
    get_run_logger().info("dashboards refreshed: %s", ", ".join(keys.values()))
    return keys
