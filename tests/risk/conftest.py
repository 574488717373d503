"""Fixtures for risk tests: a real SQLite store for the stateful parts (breaker, daily
snapshot, alert throttle). Context builders live in helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.mode import TradingMode, trading_mode
from kestrel.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with trading_mode(TradingMode.DEMO):
        opened = SQLiteStore(tmp_path / "risk.sqlite3", TradingMode.DEMO)
        try:
            yield opened
        finally:
            opened.close()
