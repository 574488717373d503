"""Order sync and position monitoring as flows, one deployment each (prefect.yaml).

Shape ("within a few seconds" on a scheduler that starts runs about once a minute, late and
bunched; see ../shared/PREFECT.md): each deployment is scheduled every 60 s with a
concurrency limit of 1, and each run polls in a bounded loop (`window_s`, default 50 s, every
`poll_s`: 2 s for sync, 5 s for the monitor) while holding a global concurrency slot
(`strict=True`), so two runs never work at once even across workers, and a crashed run frees
its slot when its lease expires. Every pass is idempotent; a failed pass is logged and the next
one tries again. Called directly (not as a deployment run, e.g. `kestrel sync`) a flow makes
a single pass unless `window_s` is given.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from kestrel.config.settings import KestrelSettings
from kestrel.execution.monitor import MonitorReport
from kestrel.execution.sync import SyncReport, poll
from kestrel.mode import trading_mode
from kestrel.operator.live import load_effective
from tasks.upkeep import monitor_pass, one_at_a_time, prepare_exchange_access, sync_pass


class LoopReport(BaseModel):
    passes: int = 0
    failed_passes: int = 0
    skipped: bool = Field(default=False, description="another run held the lock")
    changed: dict[str, str] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    last: dict[str, Any] = Field(default_factory=dict)


def _window(requested: float | None, configured: float) -> float:
    if requested is not None:
        return requested
    from prefect.runtime import deployment

    return configured if deployment.id else 0.0


def _loop(
    settings: KestrelSettings,
    deployment: str,
    one_pass: Any,
    window_s: float,
    poll_s: float,
) -> LoopReport:
    logger = get_run_logger()
    report = LoopReport()

    def step() -> None:
        try:
            result: SyncReport | MonitorReport = one_pass(settings)
        except Exception as exc:  # the next pass retries; the run goes on
            report.failed_passes += 1
            report.errors.append(f"{type(exc).__name__}: {exc}")
            logger.warning("%s pass failed: %s", deployment, exc)
            return
        report.passes += 1
        report.last = result.model_dump(mode="json")
        changed = getattr(result, "changed", None) or getattr(result, "exits", None) or {}
        if changed:
            report.changed.update(changed)
            logger.info("%s: %s", deployment, changed)

    with trading_mode(settings.mode):
        prepare_exchange_access(settings)
        with one_at_a_time(deployment, settings.exchange_api.lock_timeout_s) as held:
            if not held:
                report.skipped = True
                return report
            poll(step, window_s=window_s, poll_s=poll_s)
    return report


@flow(name="order-sync", log_prints=True)
def order_sync(
    config: dict[str, Any] | None = None,
    window_s: float | None = None,
    poll_s: float | None = None,
) -> LoopReport:
    """Reconcile every live order with the exchange, then protect the open positions, every
    `poll_s` seconds for `window_s` seconds (defaults: settings.exchange_api)."""
    settings = load_effective(config, run="order-sync")
    access = settings.exchange_api
    return _loop(
        settings,
        "order-sync",
        sync_pass,
        _window(window_s, access.sync_window_s),
        access.sync_poll_s if poll_s is None else poll_s,
    )


@flow(name="position-monitor", log_prints=True)
def position_monitor(
    config: dict[str, Any] | None = None,
    window_s: float | None = None,
    poll_s: float | None = None,
) -> LoopReport:
    """Mark open positions to market and exit on stop-loss / take-profit / trailing hits."""
    settings = load_effective(config, run="position-monitor")
    access = settings.exchange_api
    return _loop(
        settings,
        "position-monitor",
        monitor_pass,
        _window(window_s, access.monitor_window_s),
        access.monitor_poll_s if poll_s is None else poll_s,
    )
