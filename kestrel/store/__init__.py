"""Storage: one repository interface (`Store`), SQLite and MongoDB backends, routed by mode.

Use `StoreRouter(settings)`: it sends every call to the store of the current trading mode.
`MongoStore` is imported on first access so that importing Kestrel never loads pymongo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kestrel.store.base import Store
from kestrel.store.router import StoreRouter, open_store
from kestrel.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from kestrel.store.mongo import MongoStore

__all__ = ["MongoStore", "SQLiteStore", "Store", "StoreRouter", "open_store"]


def __getattr__(name: str) -> Any:
    if name == "MongoStore":
        from kestrel.store.mongo import MongoStore

        return MongoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
