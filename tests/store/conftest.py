"""Backends for the store contract suite: SQLite and mongomock always, a real MongoDB when
MONGODB_URI is set (each test then gets throw-away databases, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest

from kestrel.mode import TradingMode
from kestrel.store import MongoStore, SQLiteStore, Store

StoreFactory = Callable[[TradingMode], Store]

BACKENDS = [
    "sqlite",
    "mongomock",
    pytest.param(
        "mongodb",
        marks=pytest.mark.skipif(
            not os.environ.get("MONGODB_URI"), reason="set MONGODB_URI to test a real MongoDB"
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the store of a mode on this test's backend (one per mode, cached)."""
    backend: str = request.param
    opened: dict[TradingMode, Store] = {}
    cleanups: list[Callable[[], None]] = []

    if backend == "sqlite":

        def open_one(mode: TradingMode) -> Store:
            return SQLiteStore(tmp_path / f"kestrel_{mode.lower()}.sqlite3", mode)

    elif backend == "mongomock":
        client: Any = mongomock.MongoClient(tz_aware=True)

        def open_one(mode: TradingMode) -> Store:
            return MongoStore(client[f"kestrel_test_{mode.lower()}"], mode)

    else:
        import pymongo

        real: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            os.environ["MONGODB_URI"], serverSelectionTimeoutMS=5000, tz_aware=True
        )
        prefix = f"kestrel_test_{uuid.uuid4().hex[:12]}"

        def open_one(mode: TradingMode) -> Store:
            name = f"{prefix}_{mode.lower()}"
            cleanups.append(lambda: real.drop_database(name))
            return MongoStore(real[name], mode)

        cleanups.append(real.close)

    def factory(mode: TradingMode = TradingMode.DEMO) -> Store:
        if mode not in opened:
            opened[mode] = open_one(mode)
        return opened[mode]

    yield factory
    for store in opened.values():
        store.close()
    for cleanup in reversed(cleanups):  # drop the databases, then close the client
        cleanup()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    """The DEMO store of this test's backend."""
    return make_store(TradingMode.DEMO)
