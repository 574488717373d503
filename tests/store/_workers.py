"""Code that runs in child processes for test_sqlite_concurrency (spawned, so importable)."""

from __future__ import annotations

import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from kestrel.errors import ConcurrentUpdate, DuplicateClientOrderId
from kestrel.mode import TradingMode
from kestrel.store import SQLiteStore

from .factories import make_order

COUNTER = "counter"


def increment(store: SQLiteStore, *, in_transaction: bool) -> int:
    """Add one to the counter document; returns how many compare-and-sets were lost."""
    lost = 0
    while True:
        try:
            if in_transaction:
                with store.atomic():
                    _cas_increment(store)
            else:
                _cas_increment(store)
            return lost
        except ConcurrentUpdate:
            lost += 1


def _cas_increment(store: SQLiteStore) -> None:
    found = store.get_state(COUNTER)
    value, version = found if found is not None else ({"n": 0}, 0)
    store.put_state(COUNTER, {"n": value["n"] + 1}, expected_version=version)


def count_up(
    path: Path, times: int, in_transaction: bool, barrier: Barrier, results: Queue[object]
) -> None:
    try:
        barrier.wait()  # all start together, opening the file included
        store = SQLiteStore(path, TradingMode.DEMO)
        lost = sum(increment(store, in_transaction=in_transaction) for _ in range(times))
        store.close()
        results.put(("ok", lost))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def insert_same_order(
    path: Path, client_order_id: str, barrier: Barrier, results: Queue[object]
) -> None:
    try:
        barrier.wait()
        store = SQLiteStore(path, TradingMode.DEMO)
        try:
            store.insert_order(make_order(client_order_id))
            outcome = "won"
        except DuplicateClientOrderId:
            outcome = "duplicate"
        store.close()
        results.put(("ok", outcome))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def take_lease(path: Path, key: str, barrier: Barrier, results: Queue[object]) -> None:
    """Try once to take `key` (never released): exactly one process may win."""
    from kestrel.execution.lease import LeaseBusy, LeaseHolder, acquire

    try:
        barrier.wait()
        store = SQLiteStore(path, TradingMode.DEMO)
        try:
            acquire(store, key, LeaseHolder.here("test0001", "race"), ttl_s=600)
            outcome = "won"
        except LeaseBusy:
            outcome = "busy"
        store.close()
        results.put(("ok", outcome))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def take_lease_and_die(path: Path, key: str) -> None:
    """Take `key` and end without releasing it (as a crash or a kill would)."""
    import os

    from kestrel.execution.lease import LeaseHolder, acquire

    store = SQLiteStore(path, TradingMode.DEMO)
    acquire(store, key, LeaseHolder.here("test0001", "crashing cycle"), ttl_s=600)
    os._exit(86)
