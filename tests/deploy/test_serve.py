"""`kestrel serve` as a user runs it, without PREFECT_API_URL: it starts a local
`prefect server start` (with the UI) on loopback, serves the deployments, the server's
scheduler creates runs that the serve process executes, a run can be triggered through the
API, and stopping `kestrel serve` (SIGTERM, or even SIGKILL) leaves no server behind."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import httpx
import pytest

from deployments.server import free_port

from .helpers import REPO, cli_env

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(420)]

KESTREL = REPO / ".venv" / "bin" / "kestrel"
SERVER_LINE = re.compile(r"Starting a local Prefect server on (http://127\.0\.0\.1:\d+)")


class Serve:
    """A `kestrel serve` child process whose output we can wait on."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        self.process = subprocess.Popen(
            [str(KESTREL), "serve", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        compiled = re.compile(pattern)
        for line in self.seen:
            if found := compiled.search(line):
                return found
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                assert self.process.poll() is None, "kestrel serve exited:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            if found := compiled.search(line):
                return found
        raise AssertionError(f"no {pattern!r} after {timeout_s}s:\n" + "".join(self.seen))

    def server_pid(self) -> int:
        """The `prefect server start` child of this process."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and "prefect server start" in cmdline:
                return int(entry.name)
        raise AssertionError("kestrel serve has no prefect server child")


def gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        state = Path(f"/proc/{pid}/stat")
        if state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True  # exited; its parent has not reaped it yet
        time.sleep(0.2)
    return False


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "kestrel.toml"
    config.write_text("")
    env = cli_env("unused", tmp_path / "prefect-client")
    del env["PREFECT_API_URL"]  # the point: nothing configured
    env.update(
        {
            "KESTREL_CONFIG": str(config),
            "KESTREL_DATA_DIR": str(tmp_path / "data"),
            "KESTREL_PAPER__MARKET_DATA": "simulated",
            "KESTREL_EXCHANGE_API__SYNC_WINDOW_S": "0",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        }
    )
    return env


@pytest.fixture
def running(serve_env: dict[str, str]) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait(30)


def test_serve_starts_runs_and_stops_its_server(
    serve_env: dict[str, str], running: list[Serve]
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    args = ["-d", "order-sync", "-d", "dashboards", "--no-deadman", "--port", str(port)]
    serve = Serve(serve_env, [*args, "--limit", "2"])
    running.append(serve)
    url = serve.wait_for(SERVER_LINE.pattern, 240).group(1)
    assert url == f"http://127.0.0.1:{port}"
    serve.wait_for(r"Serving 2 deployments", 120)
    assert httpx.get(url, timeout=10).status_code == 200  # the UI
    server_pid = serve.server_pid()

    with temporary_settings(updates={PREFECT_API_URL: f"{url}/api"}):
        with get_client(sync_client=True) as client:
            names = {d.name for d in client.read_deployments()}
        assert names == {"order-sync", "dashboards"}
        # On demand, through the API, executed by the serve process.
        run = cast(FlowRun, run_deployment("kestrel-dashboards/dashboards", timeout=180))
        assert run.state is not None and run.state.is_completed(), run.state
        # On schedule: the local server's scheduler creates order-sync runs; serve runs them.
        deadline = time.monotonic() + 150
        with get_client(sync_client=True) as client:
            while True:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(
                        name=DeploymentFilterName(any_=["order-sync"])
                    )
                )
                if any(r.state is not None and r.state.is_completed() for r in runs):
                    break
                assert time.monotonic() < deadline, [r.state for r in runs]
                time.sleep(1)

    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(60) == 0
    assert gone(server_pid, 10), "the local Prefect server outlived kestrel serve"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/api/health", timeout=2)

    # Even SIGKILL (no cleanup at all) takes the server down with it (PR_SET_PDEATHSIG).
    again = Serve(serve_env, [*args, "--limit", "1"])
    running.append(again)
    again.wait_for(r"Serving 2 deployments", 240)
    second_pid = again.server_pid()
    again.process.kill()
    again.process.wait(30)
    assert gone(second_pid, 20), "the local Prefect server outlived a killed kestrel serve"
