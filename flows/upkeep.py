"""Order sync and position monitoring: one flow each, which prefect.yaml deploys and the
`kestrel sync` / `sync-loop` / `monitor` commands run.

Shape ("within a few seconds" on a scheduler that starts runs about once a minute, late and
bunched; see ../shared/PREFECT.md): each deployment is scheduled every 60 s with a
concurrency limit of 1, and each run polls in a bounded loop (`window_s`, default 50 s, every
`poll_s`: 2 s for sync, 5 s for the monitor) while holding a global concurrency slot
(`strict=True`), so two runs never work at once even across workers, and a crashed run frees
its slot when its lease expires. Each pass is a Prefect task (visible in the UI, retried on
transient exchange errors) and idempotent; a pass that still fails is logged and the next one
tries again. A deployment run that starts late polls for what is left of its window, so a
backlog of late runs drains with one pass each. Called directly (not as a deployment run,
e.g. `kestrel sync`) a flow makes a single pass unless `window_s` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from prefect import Task, flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import deployment, flow_run
from pydantic import BaseModel, Field

from blocks.settings import BlockRefs
from flows._entry import done, entry_run, running_holders, settle
from flows.params import SettingsOverrides
from kestrel.config.settings import KestrelSettings
from kestrel.execution.monitor import MonitorReport
from kestrel.execution.sync import SyncReport, poll
from tasks.upkeep import monitor_positions_task, one_at_a_time, sync_orders_task

SYNC_FLOW = "kestrel-order-sync"
MONITOR_FLOW = "kestrel-position-monitor"
Seconds = Annotated[float, Field(ge=0, le=3600)]
PollSeconds = Annotated[float, Field(gt=0, le=600)]


class LoopReport(BaseModel):
    passes: int = 0
    failed_passes: int = 0
    skipped: bool = Field(default=False, description="another run held the lock")
    changed: dict[str, str] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    last: dict[str, Any] = Field(default_factory=dict)


def window_for(requested: float | None, configured: float) -> float:
    """How long this run polls: what was asked; else, for a deployment run, the configured
    window cut by how late the run started; else (a direct call) a single pass."""
    if requested is not None:
        return requested
    if not deployment.id:
        return 0.0
    scheduled = flow_run.get_scheduled_start_time()
    late_s = max(0.0, (datetime.now(UTC) - scheduled).total_seconds()) if scheduled else 0.0
    if late_s <= 1.0:
        return configured
    left = max(0.0, configured - late_s)
    get_run_logger().info(
        "started %.0fs late: polling for %.0fs instead of %.0fs", late_s, left, configured
    )
    return left


def upkeep_loop(
    settings: KestrelSettings,
    job: Literal["order-sync", "position-monitor"],
    one_pass: Task[[KestrelSettings], SyncReport] | Task[[KestrelSettings], MonitorReport],
    window_s: float,
    poll_s: float,
) -> LoopReport | State[Any]:
    """Passes of `one_pass` every `poll_s` for `window_s` under the job's slot; a run that
    cannot get the slot stands down (Completed, skipped, naming the holder)."""
    logger = get_run_logger()
    report = LoopReport()

    def step() -> None:
        run_name = f"{job}-pass-{report.passes + report.failed_passes + 1}"
        try:
            result = one_pass.with_options(task_run_name=run_name)(settings)
        except Exception as exc:  # logged by its task; the next pass retries
            report.failed_passes += 1
            report.errors.append(f"{type(exc).__name__}: {exc}")
            return
        report.passes += 1
        report.last = result.model_dump(mode="json")
        changed = getattr(result, "changed", None) or getattr(result, "exits", None) or {}
        if changed:
            report.changed.update(changed)
            for key, outcome in changed.items():
                logger.info("%s: %s %s", job, key, outcome)

    with one_at_a_time(job, settings.exchange_api.lock_timeout_s) as held:
        if not held:
            report.skipped = True
            flow_name = SYNC_FLOW if job == "order-sync" else MONITOR_FLOW
            message = f"{job} stands down: {running_holders(flow_name)} holds its slot"
            logger.info(message)
            return done(report, message)
        poll(step, window_s=window_s, poll_s=poll_s)
    if report.failed_passes:
        message = f"{job}: {report.failed_passes} of {report.passes + report.failed_passes} "
        message += f"pass(es) failed (last: {report.errors[-1]}); the next pass tries again"
        logger.warning(message)
        return done(report, message)
    return report


def _upkeep_run(
    flow_name: str,
    label: str,
    job: Literal["order-sync", "position-monitor"],
    task: Task[[KestrelSettings], SyncReport] | Task[[KestrelSettings], MonitorReport],
    blocks: BlockRefs | None,
    config: SettingsOverrides | None,
    window_s: float | None,
    poll_s: float | None,
    access: Literal["sync", "monitor"],
) -> LoopReport | State[Any]:
    """One upkeep flow's run: its settings once (flows/_entry.py), then the polling loop for
    the window; `access` names the window and poll defaults in settings.exchange_api."""

    def body() -> LoopReport | State[Any]:
        with entry_run(flow_name, blocks, config, dashboards=label) as settings:
            api = settings.exchange_api
            return upkeep_loop(
                settings,
                job,
                task,
                window_for(window_s, getattr(api, f"{access}_window_s")),
                getattr(api, f"{access}_poll_s") if poll_s is None else poll_s,
            )

    return settle(label, body)


@flow(name=SYNC_FLOW, log_prints=True)
def order_sync(
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
    window_s: Seconds | None = None,
    poll_s: PollSeconds | None = None,
) -> LoopReport | State[Any]:
    """Reconcile every live order with the exchange, then protect the open positions, every
    `poll_s` seconds for `window_s` seconds (defaults: settings.exchange_api)."""

    return _upkeep_run(
        SYNC_FLOW,
        "order sync",
        "order-sync",
        sync_orders_task,
        blocks,
        config,
        window_s,
        poll_s,
        "sync",
    )


@flow(name=MONITOR_FLOW, log_prints=True)
def position_monitor(
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
    window_s: Seconds | None = None,
    poll_s: PollSeconds | None = None,
) -> LoopReport | State[Any]:
    """Mark open positions to market and exit on stop-loss / take-profit / trailing hits."""

    return _upkeep_run(
        MONITOR_FLOW,
        "position monitor",
        "position-monitor",
        monitor_positions_task,
        blocks,
        config,
        window_s,
        poll_s,
        "monitor",
    )
