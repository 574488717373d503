"""Operations settings: how flows fan out (task runner), when the dead-man's switch fires,
and how much history the dashboards show. Nested in KestrelSettings as `ops`, so the
environment spells them KESTREL_OPS__<FIELD> (e.g. KESTREL_OPS__TASK_RUNNER=dask).

Plain data: kestrel/ never imports prefect; deployments/ turns these into a task runner and
automations.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TaskRunnerKind = Literal["threads", "dask"]


class OpsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task_runner: TaskRunnerKind = Field(
        default="threads",
        description="threads: one process, a bounded thread pool (default; symbols are I/O "
        "bound); dask: a Dask cluster (dask_address, or a temporary local cluster)",
    )
    max_workers: int = Field(
        default=16,
        ge=1,
        le=512,
        description="threads runner: pool size. Bounds concurrent exchange calls per cycle.",
    )
    dask_address: str | None = Field(
        default=None,
        description="scheduler address, e.g. tcp://dask-scheduler:8786; empty: a temporary "
        "LocalCluster per cycle run",
    )
    dask_workers: int = Field(default=2, ge=1, le=64, description="LocalCluster workers")
    dask_threads_per_worker: int = Field(default=2, ge=1, le=64)
    dask_processes: bool = Field(
        default=True, description="LocalCluster: worker processes (True) or threads (False)"
    )
    cycle_lock_timeout_s: float = Field(
        default=5.0,
        ge=1,
        le=3600,
        description="how long a cycle waits for its watchlist's Prefect lock, then for each "
        "symbol's lease; a symbol whose lease is still held then stands down "
        "(SKIP_SYMBOL_BUSY, naming the holder)",
    )
    deadman_cycle_after_s: float = Field(
        default=1800.0,
        ge=10,
        description="alert when a trading-cycle deployment completed no run for this long",
    )
    deadman_sync_after_s: float = Field(
        default=300.0,
        ge=10,
        description="alert when order-sync completed no run for this long",
    )
    deadman_engine_after_s: float = Field(
        default=120.0,
        ge=60,
        description="the live engine's heartbeats (every 30 s) missing for this long: the "
        "dead-man's switch resumes the per-job schedules it had paused, and alerts",
    )
    dashboard_rows: int = Field(
        default=200, ge=1, le=5000, description="rows kept in the Executed and Audit tables"
    )

    @field_validator("dask_address")
    @classmethod
    def _address_shape(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip()
        if "://" not in value:
            raise ValueError("must look like tcp://host:8786 (scheme://host:port)")
        return value
