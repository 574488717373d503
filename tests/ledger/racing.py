"""Stores whose next position or daily-PnL write loses a race to another writer.

The other writer is real: the position monitor updating the same position (its high-water
mark) or the same day's PnL document (`record_unrealized`), through the same store, just
before our compare-and-set. On SQLite that write joins our transaction (one connection per
thread) and rolls back with it, so there it only exercises the retry; on MongoDB without
transactions (mongomock, a standalone server) the writes made before the lost race stay, as
they would in production: the fill is stored, the position or the day is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import mongomock

from kestrel.books.ledger import DAILY_PNL_PREFIX, record_unrealized
from kestrel.mode import TradingMode
from kestrel.models import Event, Position
from kestrel.store.base import Store
from kestrel.store.mongo import MongoStore
from kestrel.store.sqlite import SQLiteStore


class Crash(BaseException):
    """The process dies here (nothing catches it, like a kill)."""


class Racing(Store):
    """Arm with `race("position")` / `race("daily")`: the next such write loses a race;
    `race("crash")`: the process dies just before the next position write."""

    armed: set[str]

    def race(self, what: str) -> None:
        if not hasattr(self, "armed"):
            self.armed = set()
        self.armed.add(what)

    def _fire(self, what: str) -> bool:
        armed = getattr(self, "armed", set())
        if what in armed:
            armed.discard(what)
            return True
        return False

    def save_position(
        self, position: Position, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Position:
        if self._fire("crash"):
            raise Crash(f"killed before saving position {position.position_id}")
        if expected_version > 0 and self._fire("position"):
            theirs = self.get_position(position.position_id)
            assert theirs is not None
            mark = (theirs.high_water_mark or Decimal("0")) + Decimal("1")
            super().save_position(
                theirs.model_copy(update={"high_water_mark": mark}),
                expected_version=theirs.version,
            )
        return super().save_position(position, expected_version=expected_version, events=events)

    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        if key.startswith(DAILY_PNL_PREFIX) and self._fire("daily"):
            record_unrealized(self, key.removeprefix(DAILY_PNL_PREFIX), {"USDT": Decimal("-1")})
        return super().put_state(key, value, expected_version=expected_version)


class RacingSQLite(Racing, SQLiteStore):
    pass


class RacingMongo(Racing, MongoStore):
    pass


def new_mongo_db() -> Any:
    """A fresh mongomock database: MongoDB without transactions, like a standalone server."""
    return mongomock.MongoClient(tz_aware=True)["kestrel_ledger_test"]


def open_racing(backend: str, where: Any, mode: TradingMode = TradingMode.DEMO) -> Racing:
    """A new store object on the same data (a restart, or a second process): `where` is the
    SQLite file or the mongomock database."""
    if backend == "sqlite":
        return RacingSQLite(where, mode)
    store = RacingMongo(where, mode)
    assert not store.transactional, "this must exercise MongoDB without transactions"
    return store
