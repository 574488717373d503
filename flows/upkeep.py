"""Order sync and position monitoring as flows (deployments run them on schedules)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from kestrel.mode import trading_mode
from kestrel.monitor import MonitorReport
from kestrel.settings import load_settings
from kestrel.sync import SyncReport
from tasks.upkeep import monitor_positions_task, sync_orders_task


@flow(name="order-sync", log_prints=True)
def order_sync(config: dict[str, Any] | None = None) -> SyncReport:
    settings = load_settings(**(config or {}))
    with trading_mode(settings.mode):
        return sync_orders_task(settings)


@flow(name="position-monitor", log_prints=True)
def position_monitor(config: dict[str, Any] | None = None) -> MonitorReport:
    settings = load_settings(**(config or {}))
    with trading_mode(settings.mode):
        return monitor_positions_task(settings)
