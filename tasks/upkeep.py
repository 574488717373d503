"""Tasks that keep the store true after the cycle: order sync (+ protection) and position
monitoring, plus the one-at-a-time lock both deployments hold while they run.

A "pass" is one plain call (no Prefect task): the deployments run many passes per flow run in
a bounded loop, and creating a task per pass would keep every task state in memory until the
run ends. The `*_task` wrappers are for flows that run a single pass (the demo).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel.config.settings import KestrelSettings
from kestrel.execution.monitor import MonitorReport, monitor_positions
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import SyncReport, sync_orders
from kestrel.mode import current_mode, trading_mode
from kestrel.runtime import get_runtime
from tasks.retry import RETRY_OPTIONS

log = logging.getLogger(__name__)
LEASE_S = 60.0  # renewed while held; a crashed holder frees the slot after this


def prepare_exchange_access(settings: KestrelSettings) -> None:
    """Load the ExchangeAccount block when the settings name one (REAL credentials)."""
    from blocks.exchange_account import use_exchange_account

    use_exchange_account(settings)


def sync_pass(settings: KestrelSettings) -> SyncReport:
    """One order sync over every live order, then protection for the open positions."""
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        report = sync_orders(
            rt.store, rt.exchange, intent_grace_s=settings.exchange_api.intent_grace_s
        )
        policy = ProtectionPolicy.from_settings(settings.exchange_api)
        report.protection = protect_positions(rt.store, rt.exchange, policy).model_dump()
        return report


def monitor_pass(settings: KestrelSettings) -> MonitorReport:
    with trading_mode(settings.mode):
        return monitor_positions(get_runtime(settings))


@task(name="sync-orders", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def sync_orders_task(settings: KestrelSettings) -> SyncReport:
    return sync_pass(settings)


@task(name="monitor-positions", cache_policy=NO_CACHE, **RETRY_OPTIONS)
def monitor_positions_task(settings: KestrelSettings) -> MonitorReport:
    return monitor_pass(settings)


def lock_name(deployment: str) -> str:
    return f"kestrel-{deployment}-{current_mode().value.lower()}"


def ensure_lock(name: str) -> None:
    """Create the global concurrency limit (1 slot) if missing: `strict=True` below refuses
    to run without it rather than silently running unlocked."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    # ObjectAlreadyExists: a concurrent run created it first
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)


@contextmanager
def one_at_a_time(deployment: str, timeout_s: float) -> Iterator[bool]:
    """Hold the deployment's global concurrency slot (per mode); yields False when another
    run holds it past `timeout_s` (this run then has nothing to do)."""
    from prefect.concurrency.sync import concurrency

    name = lock_name(deployment)
    ensure_lock(name)
    try:
        slot = concurrency(
            name, occupy=1, timeout_seconds=timeout_s, lease_duration=LEASE_S, strict=True
        )
        slot.__enter__()
    except TimeoutError:
        log.warning("%s: another run holds %s; this run skips", deployment, name)
        yield False
        return
    try:
        yield True
    finally:
        slot.__exit__(None, None, None)
