"""The repository interface every backend implements, for one mode's database.

Design rules every backend keeps (the contract suite in tests/store checks them):
- `insert_order` rejects a second order with the same client_order_id (DuplicateClientOrderId).
- `update_order` / `save_position` / `put_state` are compare-and-set on `version`: they succeed
  only if the stored version equals `expected_version`, and bump it by one; else ConcurrentUpdate.
- `events=` passed to a write are stored in the same transaction as the write (the outbox rule).
- `append_events` stores each event_id once; a repeat is ignored (returns the stored one).
- `add_fill` stores each trade_id once per exchange-order; a repeat returns False.
- Writes inside `with store.atomic():` commit together or not at all (SQLite always; MongoDB
  when the server supports transactions, i.e. a replica set).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from kestrel.mode import TradingMode
from kestrel.models import (
    LIVE_STATUSES,
    Event,
    EventType,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    Position,
    PositionStatus,
)


class Store(ABC):
    """One mode's database. Obtain through `kestrel.store.open_store` / `StoreRouter`."""

    mode: TradingMode

    # -- transactions -------------------------------------------------------------------------
    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """Group writes; re-entrant (an inner block joins the outer transaction)."""

    # -- orders -------------------------------------------------------------------------------
    @abstractmethod
    def insert_order(self, order: Order, events: Sequence[Event] = ()) -> Order:
        """Store a new order intent; returns it with version 1."""

    @abstractmethod
    def get_order(self, client_order_id: str) -> Order | None: ...

    @abstractmethod
    def update_order(
        self, order: Order, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Order:
        """CAS-update the whole order; returns it with version expected_version + 1."""

    @abstractmethod
    def list_orders(
        self,
        *,
        symbol: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        roles: Iterable[OrderRole] | None = None,
        cycle_id: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Oldest first (by created_at, then client_order_id)."""

    # -- fills --------------------------------------------------------------------------------
    @abstractmethod
    def add_fill(self, fill: Fill) -> bool:
        """True if stored, False if this (client_order_id, trade_id) was already recorded."""

    @abstractmethod
    def list_fills(
        self, *, client_order_id: str | None = None, symbol: str | None = None
    ) -> list[Fill]:
        """Oldest first (by timestamp, then trade_id)."""

    # -- positions ----------------------------------------------------------------------------
    @abstractmethod
    def get_position(self, position_id: str) -> Position | None: ...

    @abstractmethod
    def save_position(
        self, position: Position, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Position:
        """expected_version 0 inserts (fails with ConcurrentUpdate if it exists)."""

    @abstractmethod
    def list_positions(
        self, *, status: PositionStatus | None = None, symbol: str | None = None
    ) -> list[Position]:
        """Oldest first (by opened_at)."""

    # -- events -------------------------------------------------------------------------------
    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> list[Event]:
        """Store events not yet stored (by event_id); returns them all with their seq."""

    @abstractmethod
    def list_events(
        self,
        *,
        types: Iterable[EventType] | None = None,
        symbol: str | None = None,
        after_seq: int | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """In seq order (the order they were stored)."""

    # -- small state documents (kill switch, breaker, paper account, cursors) -----------------
    @abstractmethod
    def get_state(self, key: str) -> tuple[dict[str, Any], int] | None:
        """(document, version) or None."""

    @abstractmethod
    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        """CAS write; expected_version 0 creates. Returns the new version."""

    @abstractmethod
    def list_state(
        self, prefix: str, *, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[str, dict[str, Any], int]]:
        """(key, document, version) of the state documents whose key starts with `prefix`,
        in key order (`reverse`: last key first), at most `limit` of them. Lets a caller keep
        many small documents (the paper exchange's orders and fills) and read a group back
        without a document that grows with history."""

    @abstractmethod
    def close(self) -> None: ...

    # -- conveniences built on the above ------------------------------------------------------
    def open_position(self, symbol: str) -> Position | None:
        found = self.list_positions(status=PositionStatus.OPEN, symbol=symbol)
        return found[0] if found else None

    def iter_live_orders(self, symbol: str | None = None) -> Iterator[Order]:
        yield from self.list_orders(
            symbol=symbol,
            statuses=LIVE_STATUSES,
        )
