"""Generic fixtures shared by every test area. Area-specific fixtures live in tests/<area>/."""

from __future__ import annotations

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
