"""Tasks that keep the store true after the cycle: order sync and position monitoring."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel.mode import trading_mode
from kestrel.monitor import MonitorReport, monitor_positions
from kestrel.runtime import get_runtime
from kestrel.settings import KestrelSettings
from kestrel.sync import SyncReport, sync_orders
from tasks.retry import RETRY_OPTIONS


@task(name="sync-orders", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def sync_orders_task(settings: KestrelSettings) -> SyncReport:
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        return sync_orders(rt.store, rt.exchange)


@task(name="monitor-positions", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def monitor_positions_task(settings: KestrelSettings) -> MonitorReport:
    with trading_mode(settings.mode):
        return monitor_positions(get_runtime(settings))
