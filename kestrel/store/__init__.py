"""Storage: one repository interface (`Store`), SQLite and MongoDB backends, routed by mode.

Use `StoreRouter(settings)`: it sends every call to the store of the current trading mode.
`MongoStore` is imported on first access so that importing Kestrel never loads pymongo.

Decisions beyond base.py, identical on every backend (tests/store/test_contract.py):
- A compare-and-set on a record that does not exist raises NotFound, not ConcurrentUpdate:
  nothing is ever deleted, so it is a bug (retrying cannot help), not a lost race.
  Creating (expected_version=0) a position/state that exists raises ConcurrentUpdate.
- Orders and events whose `mode` differs from the store's are refused (StoreError).
- The version of the model passed in is ignored; the store sets it (insert: 1, CAS: n+1).
- An exception leaving a nested atomic() block dooms the whole transaction: if the outer
  block swallows it and ends normally, everything is rolled back and leaving it raises
  (ConcurrentUpdate if the inner error was one, so retry loops work; else StoreError).
- State documents hold JSON values only (TypeError otherwise): dump models with mode="json".
- Empty filters (statuses=[], types=[]) match nothing; limit=0 returns [].

A read-modify-write that can lose a race goes through `update_state` / `retry_on_conflict`
(cas.py), never a hand-written retry loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kestrel.store.base import Store
from kestrel.store.cas import StateChange, retry_on_conflict, update_state
from kestrel.store.router import StoreRouter, open_store
from kestrel.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from kestrel.store.mongo import MongoStore

__all__ = [
    "MongoStore",
    "SQLiteStore",
    "StateChange",
    "Store",
    "StoreRouter",
    "open_store",
    "retry_on_conflict",
    "update_state",
]


def __getattr__(name: str) -> Any:
    if name == "MongoStore":
        from kestrel.store.mongo import MongoStore

        return MongoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
