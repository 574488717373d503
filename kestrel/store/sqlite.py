"""SQLite backend: one file per mode, safe for many threads and many processes at once.

Under Prefect every flow run is its own process and tasks run in threads, so:
- WAL journal: readers never block the writer and the writer never blocks readers.
- busy_timeout 30 s: a second writer waits for the lock instead of failing at once.
- BEGIN IMMEDIATE for every write transaction: the write lock is taken up front. A deferred
  transaction that reads and then writes can fail with SQLITE_BUSY *without waiting* when
  another process committed in between; taking the lock first makes writers queue instead,
  and reads inside `atomic()` see the latest committed data.
- synchronous=NORMAL: with WAL, an application crash never loses a commit; a power cut may
  lose the last few, never corrupts the file.
- One connection per thread (and per process: a connection inherited through fork() is
  abandoned, never used).

Rows keep the columns queries filter and sort on, plus the full pydantic JSON (`doc`), which
is re-validated on read, so Decimals come back exact (Money serialises as a string).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from kestrel.errors import DuplicateClientOrderId, StoreError
from kestrel.mode import TradingMode
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
from kestrel.store._common import (
    AtomicNesting,
    check_limit,
    check_mode,
    check_version,
    enum_values,
    lost_cas,
    micros,
    missing,
    state_document,
)
from kestrel.store.base import Store

BUSY_TIMEOUT_S = 30.0

# Migration N brings the schema from version N-1 to N. Append, never edit a shipped one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE store_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)""",
        """CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY NOT NULL,
            symbol TEXT NOT NULL,
            status TEXT NOT NULL,
            role TEXT NOT NULL,
            cycle_id TEXT,
            created_us INTEGER NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL)""",
        "CREATE INDEX orders_created ON orders (created_us, client_order_id)",
        "CREATE INDEX orders_symbol_status ON orders (symbol, status)",
        "CREATE INDEX orders_status ON orders (status)",
        "CREATE INDEX orders_cycle ON orders (cycle_id)",
        """CREATE TABLE fills (
            client_order_id TEXT NOT NULL,
            trade_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            ts INTEGER NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (client_order_id, trade_id))""",
        "CREATE INDEX fills_ts ON fills (ts, trade_id)",
        "CREATE INDEX fills_symbol ON fills (symbol, ts)",
        """CREATE TABLE positions (
            position_id TEXT PRIMARY KEY NOT NULL,
            symbol TEXT NOT NULL,
            status TEXT NOT NULL,
            opened_us INTEGER NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL)""",
        "CREATE INDEX positions_status_symbol ON positions (status, symbol)",
        "CREATE INDEX positions_opened ON positions (opened_us, position_id)",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            symbol TEXT,
            created_us INTEGER NOT NULL,
            doc TEXT NOT NULL)""",
        "CREATE INDEX events_type ON events (type, seq)",
        "CREATE INDEX events_symbol ON events (symbol, seq)",
        "CREATE INDEX events_created ON events (created_us)",
        """CREATE TABLE state (
            key TEXT PRIMARY KEY NOT NULL,
            doc TEXT NOT NULL,
            version INTEGER NOT NULL)""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


class _Opened(NamedTuple):
    pid: int
    thread: weakref.ref[threading.Thread]
    conn: sqlite3.Connection


class _ThreadState(AtomicNesting):
    """Per-thread connection and transaction nesting (class attributes are the defaults)."""

    conn: sqlite3.Connection | None = None
    pid: int = 0


class SQLiteStore(Store):
    """One mode's database in one SQLite file (see the module docstring for why it is safe)."""

    #: writes inside atomic() commit together or not at all
    transactional = True

    def __init__(self, path: Path, mode: TradingMode) -> None:
        self.mode = TradingMode(mode)
        self.path = Path(path)
        self._local = _ThreadState()
        self._opened: list[_Opened] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._enable_wal()
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connections and transactions ----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        local = self._local
        if local.conn is None or local.pid != os.getpid():
            # isolation_level=None: no implicit transactions; atomic() issues BEGIN itself.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            local.conn, local.pid, local.depth, local.doomed = conn, os.getpid(), 0, None
            self._register(conn)
        return local.conn

    def _register(self, conn: sqlite3.Connection) -> None:
        """Remember `conn` for close(), and close those of threads that have ended (Prefect
        may run each task in a fresh thread). Connections inherited through fork() are
        forgotten, never closed: closing one could let SQLite believe it is the last user of
        the file and checkpoint or remove the WAL under the parent's feet."""
        pid = os.getpid()
        with self._conns_lock:
            keep: list[_Opened] = []
            for opened in self._opened:
                if opened.pid != pid:
                    continue
                thread = opened.thread()
                if thread is None or not thread.is_alive():
                    opened.conn.close()
                else:
                    keep.append(opened)
            keep.append(_Opened(pid, weakref.ref(threading.current_thread()), conn))
            self._opened = keep

    def _enable_wal(self) -> None:
        """WAL is a property of the file; switching to it needs a moment alone with the file,
        which several processes starting together may not get at once, so retry briefly."""
        for attempt in range(50):
            try:
                mode = self._conn().execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
                continue
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            return

    def _migrate(self) -> None:
        with self.atomic():
            conn = self._conn()
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            version = int(current.fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this Kestrel "
                    f"({SCHEMA_VERSION}); upgrade Kestrel"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (target,))
            conn.execute(
                "INSERT INTO store_meta VALUES ('mode', ?) ON CONFLICT (key) DO NOTHING",
                (self.mode.value,),
            )
            stored = conn.execute("SELECT value FROM store_meta WHERE key = 'mode'").fetchone()
            if stored[0] != self.mode.value:
                raise StoreError(
                    f"{self.path} holds {stored[0]} data; it cannot be opened as {self.mode}"
                )

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT. Nested blocks join the outer transaction; an exception
        leaving any block rolls back everything when the outermost block ends (if the outer
        block swallowed it, leaving the outer block raises: see `doomed_error`)."""
        local = self._local
        conn = self._conn()
        if local.depth > 0:
            with local.join():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        local.depth, local.doomed = 1, None
        try:
            yield
            local.raise_if_doomed()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some SQLite errors have rolled back already
                conn.execute("ROLLBACK")
            raise
        finally:
            local.depth, local.doomed = 0, None

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        self._closed = True
        with self._conns_lock:
            opened, self._opened = self._opened, []
        for entry in opened:
            if entry.pid == os.getpid():
                entry.conn.close()

    # -- orders --------------------------------------------------------------------------------
    def insert_order(self, order: Order, events: Sequence[Event] = ()) -> Order:
        check_mode(self.mode, order, events)
        stored = order.model_copy(update={"version": 1})
        with self.atomic():
            try:
                self._conn().execute(
                    "INSERT INTO orders (symbol, status, role, cycle_id, created_us, version, "
                    "doc, client_order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    _order_row(stored),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateClientOrderId(order.client_order_id) from exc
            self._insert_events(events)
        return stored

    def get_order(self, client_order_id: str) -> Order | None:
        row = (
            self._conn()
            .execute("SELECT doc FROM orders WHERE client_order_id = ?", (client_order_id,))
            .fetchone()
        )
        return None if row is None else Order.model_validate_json(row[0])

    def update_order(
        self, order: Order, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Order:
        check_version(expected_version)
        check_mode(self.mode, order, events)
        stored = order.model_copy(update={"version": expected_version + 1})
        with self.atomic():
            cursor = self._conn().execute(
                "UPDATE orders SET symbol = ?, status = ?, role = ?, cycle_id = ?, "
                "created_us = ?, version = ?, doc = ? WHERE client_order_id = ? AND version = ?",
                (*_order_row(stored), expected_version),
            )
            if cursor.rowcount == 0:
                raise self._cas_failure(
                    "orders", "client_order_id", order.client_order_id, expected_version
                )
            self._insert_events(events)
        return stored

    def list_orders(
        self,
        *,
        symbol: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        roles: Iterable[OrderRole] | None = None,
        cycle_id: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        where = _Where()
        where.equals("symbol", symbol)
        where.one_of("status", enum_values(OrderStatus, statuses))
        where.one_of("role", enum_values(OrderRole, roles))
        where.equals("cycle_id", cycle_id)
        if where.empty or not check_limit(limit):
            return []
        docs = self._select("orders", where, "created_us, client_order_id", limit)
        return [Order.model_validate_json(doc) for (doc,) in docs]

    # -- fills ---------------------------------------------------------------------------------
    def add_fill(self, fill: Fill) -> bool:
        with self.atomic():
            cursor = self._conn().execute(
                "INSERT INTO fills (client_order_id, trade_id, symbol, ts, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_order_id, trade_id) DO NOTHING",
                (
                    fill.client_order_id,
                    fill.trade_id,
                    fill.symbol,
                    fill.timestamp,
                    fill.model_dump_json(),
                ),
            )
        return cursor.rowcount == 1

    def list_fills(
        self, *, client_order_id: str | None = None, symbol: str | None = None
    ) -> list[Fill]:
        where = _Where()
        where.equals("client_order_id", client_order_id)
        where.equals("symbol", symbol)
        docs = self._select("fills", where, "ts, trade_id", None)
        return [Fill.model_validate_json(doc) for (doc,) in docs]

    # -- positions -----------------------------------------------------------------------------
    def get_position(self, position_id: str) -> Position | None:
        row = (
            self._conn()
            .execute("SELECT doc FROM positions WHERE position_id = ?", (position_id,))
            .fetchone()
        )
        return None if row is None else Position.model_validate_json(row[0])

    def save_position(
        self, position: Position, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Position:
        check_version(expected_version)
        check_mode(self.mode, None, events)
        stored = position.model_copy(update={"version": expected_version + 1})
        row = (
            stored.symbol,
            stored.status.value,
            micros(stored.opened_at),
            stored.version,
            stored.model_dump_json(),
            stored.position_id,
        )
        with self.atomic():
            conn = self._conn()
            if expected_version == 0:
                try:
                    conn.execute(
                        "INSERT INTO positions (symbol, status, opened_us, version, doc, "
                        "position_id) VALUES (?, ?, ?, ?, ?, ?)",
                        row,
                    )
                except sqlite3.IntegrityError as exc:
                    stored_version = self._version("positions", "position_id", position.position_id)
                    raise lost_cas(
                        "position", position.position_id, 0, stored_version or 0
                    ) from exc
            else:
                cursor = conn.execute(
                    "UPDATE positions SET symbol = ?, status = ?, opened_us = ?, version = ?, "
                    "doc = ? WHERE position_id = ? AND version = ?",
                    (*row, expected_version),
                )
                if cursor.rowcount == 0:
                    raise self._cas_failure(
                        "positions", "position_id", position.position_id, expected_version
                    )
            self._insert_events(events)
        return stored

    def list_positions(
        self, *, status: PositionStatus | None = None, symbol: str | None = None
    ) -> list[Position]:
        where = _Where()
        where.equals("status", None if status is None else PositionStatus(status).value)
        where.equals("symbol", symbol)
        docs = self._select("positions", where, "opened_us, position_id", None)
        return [Position.model_validate_json(doc) for (doc,) in docs]

    # -- events --------------------------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[Event]:
        check_mode(self.mode, None, events)
        with self.atomic():
            return self._insert_events(events)

    def list_events(
        self,
        *,
        types: Iterable[EventType] | None = None,
        symbol: str | None = None,
        after_seq: int | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        where = _Where()
        where.one_of("type", enum_values(EventType, types))
        where.equals("symbol", symbol)
        if after_seq is not None:
            where.add("seq > ?", after_seq)
        if since is not None:
            where.add("created_us >= ?", micros(since))
        if where.empty or not check_limit(limit):
            return []
        rows = self._select("events", where, "seq", limit, columns="seq, doc")
        return [_event(seq, doc) for seq, doc in rows]

    def _insert_events(self, events: Sequence[Event]) -> list[Event]:
        """Runs inside the caller's transaction; a repeated event_id keeps the stored event."""
        conn = self._conn()
        stored: list[Event] = []
        for event in events:
            conn.execute(
                "INSERT INTO events (event_id, type, symbol, created_us, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (
                    event.event_id,
                    event.type.value,
                    event.symbol,
                    micros(event.created_at),
                    event.model_dump_json(exclude={"seq"}),
                ),
            )
            seq, doc = conn.execute(
                "SELECT seq, doc FROM events WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            stored.append(_event(seq, doc))
        return stored

    # -- state documents -----------------------------------------------------------------------
    def get_state(self, key: str) -> tuple[dict[str, Any], int] | None:
        row = (
            self._conn().execute("SELECT doc, version FROM state WHERE key = ?", (key,)).fetchone()
        )
        if row is None:
            return None
        return json.loads(row[0]), int(row[1])

    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        check_version(expected_version)
        doc = json.dumps(state_document(value))
        new_version = expected_version + 1
        with self.atomic():
            conn = self._conn()
            if expected_version == 0:
                try:
                    conn.execute("INSERT INTO state VALUES (?, ?, 1)", (key, doc))
                except sqlite3.IntegrityError as exc:
                    raise lost_cas(
                        "state", key, 0, self._version("state", "key", key) or 0
                    ) from exc
            else:
                cursor = conn.execute(
                    "UPDATE state SET doc = ?, version = ? WHERE key = ? AND version = ?",
                    (doc, new_version, key, expected_version),
                )
                if cursor.rowcount == 0:
                    raise self._cas_failure("state", "key", key, expected_version)
        return new_version

    def list_state(
        self, prefix: str, *, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[str, dict[str, Any], int]]:
        # A key range, not LIKE: it uses the primary key index and needs no escaping.
        order = "DESC" if reverse else "ASC"
        rows = (
            self._conn()
            .execute(
                "SELECT key, doc, version FROM state WHERE key >= ? AND key < ? "
                f"ORDER BY key {order} LIMIT ?",
                (prefix, prefix + "\U0010ffff", -1 if limit is None else limit),
            )
            .fetchall()
        )
        return [(str(key), json.loads(doc), int(version)) for key, doc, version in rows]

    # -- helpers -------------------------------------------------------------------------------
    def _version(self, table: str, key_column: str, key: str) -> int | None:
        row = (
            self._conn()
            .execute(f"SELECT version FROM {table} WHERE {key_column} = ?", (key,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def _cas_failure(self, table: str, key_column: str, key: str, expected: int) -> StoreError:
        what = {"orders": "order", "positions": "position", "state": "state"}[table]
        stored = self._version(table, key_column, key)
        if stored is None:
            how = "insert_order()" if table == "orders" else "expected_version=0"
            return missing(what, key, how)
        return lost_cas(what, key, expected, stored)

    def _select(
        self,
        table: str,
        where: _Where,
        order_by: str,
        limit: int | None,
        columns: str = "doc",
    ) -> list[tuple[Any, ...]]:
        sql = f"SELECT {columns} FROM {table}{where.sql} ORDER BY {order_by}"
        params = list(where.params)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._conn().execute(sql, params).fetchall()


class _Where:
    """Builds a WHERE clause from optional filters; `empty` marks an IN () that matches nothing."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []
        self.empty = False

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def equals(self, column: str, value: str | None) -> None:
        if value is not None:
            self.add(f"{column} = ?", value)

    def one_of(self, column: str, values: list[str] | None) -> None:
        if values is None:
            return
        if not values:
            self.empty = True
            return
        self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    @property
    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def _order_row(order: Order) -> tuple[Any, ...]:
    """Column values in the order both INSERT and UPDATE list them (key last)."""
    return (
        order.symbol,
        order.status.value,
        order.role.value,
        order.cycle_id,
        micros(order.created_at),
        order.version,
        order.model_dump_json(),
        order.client_order_id,
    )


def _event(seq: int, doc: str) -> Event:
    return Event.model_validate_json(doc).model_copy(update={"seq": seq})
