"""Helpers for the deployment tests: candles for the emulator, Prefect CLI subprocesses with
a clean environment, and waiting for flow runs through the API."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

REPO = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
FLOW_RUN_ID = re.compile(r"UUID:\s*([0-9a-f-]{36})")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def wave_closes(count: int, base: float = 30_000.0) -> list[float]:
    """Deterministic closes: a slow wave with a decline then a recovery, never flat."""
    closes = []
    for i in range(count):
        phase = i / 9.0
        closes.append(base * (1 + 0.04 * math.sin(phase) + 0.015 * math.sin(3.1 * phase + 1.0)))
    return closes


def hourly_candles(closes: list[float], last_closed: int) -> list[list[Any]]:
    """1h candles over `closes`; candle `last_closed` is the one that closed at the last full
    hour (a REAL-mode cycle judges freshness by the wall clock), later ones lie in the future
    (the emulator reveals them as its clock advances)."""
    last_open = (int(time.time() * 1000) // HOUR_MS - 1) * HOUR_MS
    rows: list[list[Any]] = []
    previous = closes[0]
    for i, close in enumerate(closes):
        open_ = previous
        rows.append(
            [
                last_open - (last_closed - i) * HOUR_MS,
                round(open_, 2),
                round(max(open_, close) * 1.002, 2),
                round(min(open_, close) * 0.998, 2),
                round(close, 2),
                round(10 + 5 * math.cos(i / 9.0), 4),
            ]
        )
        previous = close
    return rows


def cli_env(
    api_url: str, client_home: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a Prefect CLI / worker subprocess: our server, our own client home,
    no telemetry, and no KESTREL_* or PREFECT_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESTREL_", "PREFECT_"))}
    env.update(
        {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(client_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
    )
    env.update(extra or {})
    return env


def prefect_cli(
    args: list[str], env: Mapping[str, str], timeout_s: float = 180.0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def run_deployment_cli(name: str, params: Mapping[str, Any] | None, env: Mapping[str, str]) -> UUID:
    """`prefect deployment run NAME --params JSON`; returns the new flow run's id."""
    import json

    args = ["deployment", "run", name]
    if params:
        args += ["--params", json.dumps(params)]
    done = prefect_cli(args, env, timeout_s=120)
    found = FLOW_RUN_ID.search(done.stdout)
    assert found, f"no flow run id in:\n{done.stdout}"
    return UUID(found.group(1))


def wait_for_run(flow_run_id: UUID, timeout_s: float = 240.0) -> Any:
    """Poll the API (current settings) until the run is final; returns the FlowRun."""
    from prefect import get_client

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.type.value in FINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"flow run {run.name} still {run.state.type.value if run.state else '?'} "
                    f"after {timeout_s:.0f}s"
                )
            time.sleep(0.5)


def latest_artifact(key: str) -> Any:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return found[0]


def table_rows(artifact: Any) -> list[dict[str, Any]]:
    import json

    data = artifact.data
    rows = json.loads(data) if isinstance(data, str) else data
    return list(rows)


def run_logs(flow_run_id: UUID) -> list[str]:
    """Every log line of a flow run and of its subflows' tasks is not included: the lines
    written under this flow run id (flow, its tasks, Kestrel's loggers)."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    return [log.message for log in logs]
