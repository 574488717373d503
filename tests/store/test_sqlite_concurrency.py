"""SQLite under real concurrency: several processes (as Prefect flow runs are) and threads
(as Prefect tasks are) sharing one database file."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kestrel.errors import StoreError
from kestrel.mode import TradingMode
from kestrel.store import SQLiteStore
from kestrel.store.sqlite import SCHEMA_VERSION

from . import _workers

PROCESSES = 4
INCREMENTS = 50


def run_processes(target: Callable[..., None], *args: Any) -> list[object]:
    """Start PROCESSES spawned children on `target(*args, barrier, queue)`; their results."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    children = [
        ctx.Process(target=target, args=(*args, barrier, results)) for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=300) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    errors = [detail for status, detail in outcomes if status == "error"]
    assert not errors, "\n".join(str(e) for e in errors)
    return [detail for _, detail in outcomes]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "kestrel_demo.sqlite3"
    SQLiteStore(path, TradingMode.DEMO).close()  # created once; children open it concurrently
    return path


def final_count(path: Path) -> int:
    store = SQLiteStore(path, TradingMode.DEMO)
    try:
        found = store.get_state(_workers.COUNTER)
        assert found is not None
        doc, version = found
        assert version == doc["n"], "every increment was exactly one version"
        return int(doc["n"])
    finally:
        store.close()


def test_processes_counting_with_compare_and_set_lose_no_update(db_path: Path) -> None:
    run_processes(_workers.count_up, db_path, INCREMENTS, False)
    assert final_count(db_path) == PROCESSES * INCREMENTS


def test_processes_creating_a_new_file_together_agree_on_one_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "kestrel_demo.sqlite3"
    run_processes(_workers.count_up, path, 5, False)
    assert final_count(path) == PROCESSES * 5


def test_read_modify_write_inside_atomic_never_loses_its_compare_and_set(db_path: Path) -> None:
    """BEGIN IMMEDIATE takes the write lock before the read, so no other process can change
    the row between this process's get_state and put_state."""
    lost = run_processes(_workers.count_up, db_path, INCREMENTS, True)
    assert lost == [0] * PROCESSES
    assert final_count(db_path) == PROCESSES * INCREMENTS


def test_concurrent_inserts_of_one_client_order_id_have_one_winner(db_path: Path) -> None:
    outcomes = run_processes(_workers.insert_same_order, db_path, "o-race")
    assert sorted(str(outcome) for outcome in outcomes) == ["duplicate"] * (PROCESSES - 1) + ["won"]
    store = SQLiteStore(db_path, TradingMode.DEMO)
    try:
        assert len(store.list_orders()) == 1
    finally:
        store.close()


def test_threads_share_one_store_through_per_thread_connections(db_path: Path) -> None:
    store = SQLiteStore(db_path, TradingMode.DEMO)
    barrier = threading.Barrier(PROCESSES)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(INCREMENTS):
                _workers.increment(store, in_transaction=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert errors == []
    assert final_count(db_path) == PROCESSES * INCREMENTS


def test_the_file_uses_wal_and_records_its_schema_version(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (SCHEMA_VERSION + 1,))
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(StoreError, match="newer than this Kestrel"):
        SQLiteStore(db_path, TradingMode.DEMO)


def test_connections_of_finished_threads_are_closed(db_path: Path) -> None:
    """Prefect may run each task in a new thread; their connections must not pile up.
    (White-box: it looks at each thread's connection through the private _conn().)"""
    store = SQLiteStore(db_path, TradingMode.DEMO)
    seen: list[sqlite3.Connection] = []

    def use_store() -> None:
        store.get_state("anything")
        seen.append(store._conn())

    def is_open(conn: sqlite3.Connection) -> bool:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return False
        return True

    for _ in range(10):
        thread = threading.Thread(target=use_store)
        thread.start()
        thread.join()
    assert [is_open(conn) for conn in seen] == [False] * 9 + [True]
    store.close()
    assert not is_open(seen[-1])
