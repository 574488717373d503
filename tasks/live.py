"""The live engine's own steps as Prefect tasks (thin: kestrel.live does the work), so every
pass the engine runs in-process shows in the UI with its state and logs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel.execution.monitor import MonitorReport
from kestrel.live.protect import monitor_at
from kestrel.live.ticks import StreamPricedExchange
from kestrel.mode import trading_mode
from kestrel.runtime import Runtime
from tasks.retry import RETRY_OPTIONS


@task(name="live-monitor", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def live_monitor_task(rt: Runtime, prices: StreamPricedExchange, reason: str) -> MonitorReport:
    """One monitor pass priced by the streams (a tick that crossed a level is the price)."""
    with trading_mode(rt.mode):
        return monitor_at(rt, prices)
