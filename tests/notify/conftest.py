"""Fixtures for notification tests: the fake Telegram server, a real SQLite store, settings
pointed at the server, and helpers to store events the way the rest of Kestrel does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.telegram_server import FakeTelegramServer
from kestrel.mode import TradingMode
from kestrel.notify.settings import TelegramSettings
from kestrel.store.sqlite import SQLiteStore

from .helpers import make_settings


@pytest.fixture
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(max_hang_s=15, max_long_poll_s=2) as srv:
        yield srv


@pytest.fixture
def store_path(tmp_data_dir: Path) -> Path:
    return tmp_data_dir / "demo.sqlite"


@pytest.fixture
def store(store_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(store_path, TradingMode.DEMO)
    yield opened
    opened.close()


@pytest.fixture
def settings(server: FakeTelegramServer) -> TelegramSettings:
    return make_settings(server)
