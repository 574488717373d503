"""Opening a mode's store from settings, and the router the rest of Kestrel talks to.

DEMO and REAL always live in physically separate places (two SQLite files, or two MongoDB
databases), and `StoreRouter` picks one per call from the mode ContextVar, so code that
forgot to think about the mode lands in DEMO and can never write REAL records by accident.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError
from kestrel.mode import TradingMode, current_mode
from kestrel.models import (
    Event,
    EventType,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    Position,
    PositionStatus,
)
from kestrel.store.base import Store
from kestrel.store.sqlite import SQLiteStore

SQLITE_PREFIX = "sqlite:///"
MONGO_PREFIXES = ("mongodb://", "mongodb+srv://")
DEFAULT_MONGO_DB = "kestrel"


def sqlite_path(data_dir: Path, mode: TradingMode) -> Path:
    return Path(data_dir) / f"kestrel_{TradingMode(mode).lower()}.sqlite3"


def open_store(settings: KestrelSettings, mode: TradingMode) -> Store:
    """The store of one mode.

    - store_uri empty: SQLite file `{data_dir}/kestrel_{demo|real}.sqlite3`.
    - `sqlite:///<dir>`: the same file names under <dir> (SQLAlchemy's convention: three
      slashes then a relative path, four slashes for an absolute one).
    - `mongodb://` / `mongodb+srv://`: database `<db from the URI, default kestrel>_{demo|real}`.
    """
    mode = TradingMode(mode)
    uri = settings.store_uri
    if not uri:
        return _open_sqlite(settings.data_dir, mode)
    if uri.startswith(SQLITE_PREFIX):
        directory = uri.removeprefix(SQLITE_PREFIX)
        if not directory:
            raise ConfigError(f"store_uri {uri!r} names no directory; e.g. sqlite:///.kestrel")
        return _open_sqlite(Path(directory), mode)
    if uri.startswith(MONGO_PREFIXES):
        return _open_mongo(uri, mode)
    raise ConfigError(
        f"store_uri {uri!r}: must start with sqlite:///, mongodb:// or mongodb+srv://"
    )


def _open_sqlite(directory: Path, mode: TradingMode) -> Store:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file; the store location must be a directory")
    directory.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(sqlite_path(directory, mode), mode)


def _open_mongo(uri: str, mode: TradingMode) -> Store:
    # pymongo is imported only here so that SQLite users never pay for it.
    from pymongo import MongoClient

    from kestrel.store.mongo import MongoStore

    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=5000, tz_aware=True, appname="kestrel"
    )
    try:
        base = client.get_default_database(default=DEFAULT_MONGO_DB).name
        return MongoStore(client[f"{base}_{mode.lower()}"], mode, close_client=True)
    except BaseException:
        client.close()
        raise


class StoreRouter(Store):
    """A Store that sends every call to the store of `current_mode()`.

    Backends open lazily on first use and are cached per mode. An `atomic()` block belongs
    to the mode that was current when it began: do not switch mode inside one.
    """

    def __init__(self, settings: KestrelSettings) -> None:
        self.settings = settings
        self._stores: dict[TradingMode, Store] = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> TradingMode:
        """The mode this router currently routes to (it follows the ContextVar)."""
        return current_mode()

    @mode.setter
    def mode(self, value: TradingMode) -> None:
        raise AttributeError("StoreRouter follows kestrel.mode.trading_mode(); it has no own mode")

    def backend(self, mode: TradingMode | None = None) -> Store:
        """The store of `mode` (default: the current mode), opened on first use."""
        mode = current_mode() if mode is None else TradingMode(mode)
        with self._lock:
            store = self._stores.get(mode)
            if store is None:
                store = self._stores[mode] = open_store(self.settings, mode)
            return store

    def close(self) -> None:
        """Close every opened backend; a later call opens them again."""
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()

    # -- delegation ----------------------------------------------------------------------------
    def atomic(self) -> AbstractContextManager[None]:
        return self.backend().atomic()

    def insert_order(self, order: Order, events: Sequence[Event] = ()) -> Order:
        return self.backend().insert_order(order, events)

    def get_order(self, client_order_id: str) -> Order | None:
        return self.backend().get_order(client_order_id)

    def update_order(
        self, order: Order, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Order:
        return self.backend().update_order(order, expected_version=expected_version, events=events)

    def list_orders(
        self,
        *,
        symbol: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        roles: Iterable[OrderRole] | None = None,
        cycle_id: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        return self.backend().list_orders(
            symbol=symbol, statuses=statuses, roles=roles, cycle_id=cycle_id, limit=limit
        )

    def add_fill(self, fill: Fill) -> bool:
        return self.backend().add_fill(fill)

    def list_fills(
        self, *, client_order_id: str | None = None, symbol: str | None = None
    ) -> list[Fill]:
        return self.backend().list_fills(client_order_id=client_order_id, symbol=symbol)

    def get_position(self, position_id: str) -> Position | None:
        return self.backend().get_position(position_id)

    def save_position(
        self, position: Position, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Position:
        return self.backend().save_position(
            position, expected_version=expected_version, events=events
        )

    def list_positions(
        self, *, status: PositionStatus | None = None, symbol: str | None = None
    ) -> list[Position]:
        return self.backend().list_positions(status=status, symbol=symbol)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        return self.backend().append_events(events)

    def list_events(
        self,
        *,
        types: Iterable[EventType] | None = None,
        symbol: str | None = None,
        after_seq: int | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        return self.backend().list_events(
            types=types, symbol=symbol, after_seq=after_seq, since=since, limit=limit
        )

    def get_state(self, key: str) -> tuple[dict[str, Any], int] | None:
        return self.backend().get_state(key)

    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        return self.backend().put_state(key, value, expected_version=expected_version)

    def list_state(
        self, prefix: str, *, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[str, dict[str, Any], int]]:
        return self.backend().list_state(prefix, limit=limit, reverse=reverse)

    def open_position(self, symbol: str) -> Position | None:
        return self.backend().open_position(symbol)

    def iter_live_orders(self, symbol: str | None = None) -> Iterator[Order]:
        # Bind the backend now, not when the caller first iterates (maybe in another mode).
        return self.backend().iter_live_orders(symbol)
