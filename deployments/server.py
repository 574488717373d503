"""A local `prefect server start`, supervised: started on loopback, waited for, and stopped.

Prefect's ephemeral server never runs the scheduler (../shared/PREFECT.md), so scheduled
deployments need a real server. `kestrel serve`, the end-to-end tests and the benchmark use
this to run one of their own: its own PREFECT_HOME (SQLite database, logs), a free port on
127.0.0.1, the UI on, and no orphan when we go:

- the server runs in its own session (a Ctrl-C in the terminal reaches us, not it, so we
  stop our runs first and the server last);
- on Linux it gets SIGTERM from the kernel if our process dies, even by SIGKILL
  (PR_SET_PDEATHSIG);
- `stop()` sends SIGTERM, waits, then SIGKILLs.

Imports nothing from Prefect: it runs Prefect's CLI as a child process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from kestrel.errors import KestrelError

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 4200
PR_SET_PDEATHSIG = 1


class ServerStartError(KestrelError):
    """The server exited or did not answer /api/health in time."""


def free_port(host: str = LOOPBACK, preferred: int | None = None) -> int:
    """`preferred` if nothing listens there, else a port the OS picks."""
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, preferred))
                return preferred
            except OSError:
                pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: stop() and the session still cover the normal paths


def server_environment(home: Path, *, scheduler: bool = True, ui: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "true" if ui else "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true" if scheduler else "false",
            "PREFECT_SERVER_LOGGING_LEVEL": env.get("PREFECT_SERVER_LOGGING_LEVEL", "WARNING"),
        }
    )
    return env


class LocalPrefectServer:
    """`with LocalPrefectServer(home) as server:` ... `server.api_url` ..."""

    def __init__(
        self,
        home: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        preferred_port: int | None = None,
        scheduler: bool = True,
        ui: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.host = host
        self.port = port or free_port(host, preferred_port)
        self.scheduler = scheduler
        self.ui = ui
        self.extra_env = dict(extra_env or {})
        self.log_path = self.home / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def start(self, timeout_s: float = 180.0) -> LocalPrefectServer:
        """Start it and wait until /api/health answers. The first start on a new home runs
        the database migrations (20-40 s here)."""
        if self.process is not None:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        env = server_environment(self.home, scheduler=self.scheduler, ui=self.ui)
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.api_url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json() is True

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerStartError(
                    f"prefect server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise ServerStartError(
            f"prefect server at {self.api_url} not healthy after {timeout_s:.0f}s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return process.returncode

    def __enter__(self) -> LocalPrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
