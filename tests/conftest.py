"""Generic fixtures shared by every test area. Area-specific fixtures live in tests/<area>/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# /work/main/tests/conftest.py -> /work/main/../shared/data
SHARED_DIR = Path(__file__).resolve().parents[1] / ".." / "shared"


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """A fresh, empty Kestrel data_dir (SQLite files and the like) for one test."""
    data_dir = tmp_path / "kestrel-data"
    data_dir.mkdir()
    return data_dir


@pytest.fixture
def shared_data_dir() -> Path:
    """../shared/data; the test is skipped only when ../shared itself is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR.resolve()} is absent")
    return (SHARED_DIR / "data").resolve()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect API server for the whole session (starting one costs ~10-20 s).

    Kestrel's Prefect defaults are applied first (kestrel/config/prefect_env.py), with PREFECT_HOME
    in a
    temporary folder so tests never touch the user's Prefect home."""
    import os

    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from kestrel.config.prefect_env import configure_prefect_env

    configure_prefect_env()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
