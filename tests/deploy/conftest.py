"""One real `prefect server start` (SQLite in a temporary PREFECT_HOME, 127.0.0.1, a free
port) for the deployment tests, started once and stopped after them."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.server import LocalPrefectServer

if "prefect" not in sys.modules:  # flows run in this process must not use the user's home
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="kestrel-test-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    """The scheduler is off: tests start every run themselves, so nothing runs unasked.
    Package scope: it stops when tests/deploy is done, not at the end of the session."""
    home = tmp_path_factory.mktemp("prefect-server")
    server = LocalPrefectServer(home, scheduler=False, ui=False)
    server.start(timeout_s=240)
    try:
        yield server
    finally:
        _drain_prefect_workers()
        server.stop()


def _drain_prefect_workers() -> None:
    """Send what this process still holds (logs, events) while the server is up, rather
    than failing to at interpreter exit."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@pytest.fixture
def prefect_api(prefect_server: LocalPrefectServer) -> Iterator[str]:
    """This test process talks to the session's server (flows called in-process included)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        _fresh_events_worker()
        yield prefect_server.api_url


def _fresh_events_worker() -> None:
    """Prefect keeps one events worker per process, bound to the API it first met; a test
    elsewhere in the session may have started it against a server that is gone. Drained, it
    is started again, against this server, by the next event."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)


@pytest.fixture
def client_home(tmp_path: Path) -> Path:
    """PREFECT_HOME for CLI subprocesses (profiles, local storage): never the user's."""
    home = tmp_path / "prefect-client"
    home.mkdir()
    return home
