"""MongoDB backend: the same contract as SQLite, one database per mode.

Documents are the model's `model_dump(mode="json")` (Decimals as strings, so money stays exact)
plus a few underscore-prefixed sort keys (`_created_us`, `_opened_us`: integer microseconds);
reads drop every `_`-prefixed key and re-validate the rest with the pydantic model.

Transactions: `atomic()` uses a client session and a multi-document transaction when the
server supports them (a replica set or a sharded cluster). A standalone server (and mongomock)
has none, so there `atomic()` only groups the calls: each single-document write is still
atomic and every compare-and-set still holds, but a crash between writing an order and writing
its `events=` can lose those events, and an exception does not undo earlier writes.
Run MongoDB as a replica set (a one-node replica set is enough) for the outbox guarantee.
On a replica set a single write method is its own transaction and is retried by the driver
when it conflicts with another writer; an `atomic()` block cannot be re-run by the store, so
a conflict there surfaces as ConcurrentUpdate: re-read and retry the whole block.
Do not await inside `atomic()`: the transaction belongs to the thread, not the coroutine.

Event seq comes from one `counters` document bumped with find_one_and_update($inc): atomic on
every server, so seqs are unique and increasing. In a transaction the counter is part of it
(an abort gives the number back, and concurrent writers serialise on that document, so seq
order is commit order). Without transactions a seq can be skipped (two writers racing to
store the same event_id) and two writers may make seq 9 visible before seq 8, so a reader
polling with `after_seq` there should overlap a little and dedupe by event_id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from kestrel.errors import ConcurrentUpdate, DuplicateClientOrderId, StoreError
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

SCHEMA_VERSION = 1
Doc = dict[str, Any]

# collection -> [(keys, unique)]
INDEXES: dict[str, list[tuple[list[tuple[str, int]], bool]]] = {
    "orders": [
        ([("client_order_id", ASCENDING)], True),
        ([("_created_us", ASCENDING), ("client_order_id", ASCENDING)], False),
        ([("symbol", ASCENDING), ("status", ASCENDING)], False),
        ([("status", ASCENDING)], False),
        ([("cycle_id", ASCENDING)], False),
    ],
    "fills": [
        ([("client_order_id", ASCENDING), ("trade_id", ASCENDING)], True),
        ([("timestamp", ASCENDING), ("trade_id", ASCENDING)], False),
        ([("symbol", ASCENDING), ("timestamp", ASCENDING)], False),
    ],
    "positions": [
        ([("position_id", ASCENDING)], True),
        ([("status", ASCENDING), ("symbol", ASCENDING)], False),
        ([("_opened_us", ASCENDING), ("position_id", ASCENDING)], False),
    ],
    "events": [
        ([("event_id", ASCENDING)], True),
        ([("seq", ASCENDING)], True),
        ([("type", ASCENDING), ("seq", ASCENDING)], False),
        ([("symbol", ASCENDING), ("seq", ASCENDING)], False),
        ([("_created_us", ASCENDING)], False),
    ],
}


class _ThreadState(AtomicNesting):
    session: ClientSession | None = None


class MongoStore(Store):
    """One mode's database on MongoDB. `close_client=True` when this store owns the client."""

    def __init__(self, db: Database[Doc], mode: TradingMode, *, close_client: bool = False) -> None:
        self.mode = TradingMode(mode)
        self.db = db
        self._close_client = close_client
        self._local = _ThreadState()
        self._orders: Collection[Doc] = db["orders"]
        self._fills: Collection[Doc] = db["fills"]
        self._positions: Collection[Doc] = db["positions"]
        self._events: Collection[Doc] = db["events"]
        self._state: Collection[Doc] = db["state"]
        self._counters: Collection[Doc] = db["counters"]
        self._meta: Collection[Doc] = db["kestrel_meta"]
        try:
            self._prepare()
            self.transactional = self._detect_transactions()
        except PyMongoError as exc:
            raise StoreError(f"cannot use MongoDB database {db.name!r}: {exc}") from exc

    # -- set-up --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Indexes, the events counter, the schema version and the mode stamp (idempotent, so
        every process may run it at start)."""
        for name, indexes in INDEXES.items():
            for keys, unique in indexes:
                self.db[name].create_index(keys, unique=unique)
        self._counters.update_one({"_id": "events"}, {"$setOnInsert": {"seq": 0}}, upsert=True)
        schema = self._stamp("schema_version", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:  # no migrations exist yet; the first one goes here
            raise StoreError(
                f"MongoDB database {self.db.name!r} has schema version {schema}, but this "
                f"Kestrel uses {SCHEMA_VERSION}; run the matching Kestrel version"
            )
        stamped_mode = self._stamp("mode", self.mode.value)
        if stamped_mode != self.mode.value:
            raise StoreError(
                f"MongoDB database {self.db.name!r} holds {stamped_mode} data; "
                f"it cannot be opened as {self.mode}"
            )

    def _stamp(self, key: str, value: int | str) -> Any:
        """Write kestrel_meta[key] if absent; return what is stored."""
        self._meta.update_one({"_id": key}, {"$setOnInsert": {"value": value}}, upsert=True)
        return (self._meta.find_one({"_id": key}) or {}).get("value")

    def _detect_transactions(self) -> bool:
        """Replica-set members report setName and mongos reports msg=isdbgrid; only those run
        multi-document transactions. mongomock implements no such command: no transactions."""
        for command in ("hello", "isMaster"):
            try:
                reply = self.db.command(command)
            except NotImplementedError:
                return False
            except OperationFailure:
                continue
            return "setName" in reply or reply.get("msg") == "isdbgrid"
        return False

    # -- transactions --------------------------------------------------------------------------
    def _session(self) -> ClientSession | None:
        return self._local.session

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction when the server has them (see the module docstring), else a plain
        group. Nested blocks join the outer one; an exception leaving any block aborts the
        transaction when the outermost block ends."""
        local = self._local
        if local.depth > 0:
            with local.join():
                yield
            return
        if not self.transactional:
            local.depth = 1
            try:
                yield
            finally:
                local.depth, local.doomed = 0, None
            return
        with self.db.client.start_session() as session:
            session.start_transaction(
                read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
            )
            local.session, local.depth, local.doomed = session, 1, None
            try:
                yield
                local.raise_if_doomed()
                _commit(session)
            except BaseException as exc:
                if session.in_transaction:
                    session.abort_transaction()
                if isinstance(exc, PyMongoError) and exc.has_error_label(
                    "TransientTransactionError"
                ):
                    raise ConcurrentUpdate(
                        f"the transaction conflicted with another writer ({exc}); "
                        "re-read and retry the whole block"
                    ) from exc
                raise
            finally:
                local.session, local.depth, local.doomed = None, 0, None

    def _write[T](self, work: Callable[[], T]) -> T:
        """Run one method's writes as one unit. Alone on a replica set it is its own
        transaction, which the driver re-runs on a transient conflict (two writers bumping
        the events counter, say) so callers never see those; inside atomic() it joins the
        caller's transaction; without transactions it simply runs."""
        local = self._local
        if local.depth > 0 or not self.transactional:
            with self.atomic():
                return work()
        with self.db.client.start_session() as session:
            local.session, local.depth, local.doomed = session, 1, None
            try:
                return session.with_transaction(
                    lambda _: work(),
                    read_concern=ReadConcern("snapshot"),
                    write_concern=WriteConcern("majority"),
                )
            finally:
                local.session, local.depth, local.doomed = None, 0, None

    def close(self) -> None:
        if self._close_client:
            self.db.client.close()

    # -- orders --------------------------------------------------------------------------------
    def insert_order(self, order: Order, events: Sequence[Event] = ()) -> Order:
        check_mode(self.mode, order, events)
        stored = order.model_copy(update={"version": 1})

        def work() -> None:
            try:
                self._orders.insert_one(_order_doc(stored), session=self._session())
            except DuplicateKeyError as exc:
                raise DuplicateClientOrderId(order.client_order_id) from exc
            self._insert_events(events)

        self._write(work)
        return stored

    def get_order(self, client_order_id: str) -> Order | None:
        doc = self._orders.find_one({"client_order_id": client_order_id}, session=self._session())
        return None if doc is None else Order.model_validate(_fields(doc))

    def update_order(
        self, order: Order, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Order:
        check_version(expected_version)
        check_mode(self.mode, order, events)
        stored = order.model_copy(update={"version": expected_version + 1})
        key = {"client_order_id": order.client_order_id}

        def work() -> None:
            self._replace(self._orders, key, expected_version, _order_doc(stored), "order")
            self._insert_events(events)

        self._write(work)
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
        query = _query(
            symbol=symbol,
            status=enum_values(OrderStatus, statuses),
            role=enum_values(OrderRole, roles),
            cycle_id=cycle_id,
        )
        if not check_limit(limit):
            return []
        docs = self._find(self._orders, query, ["_created_us", "client_order_id"], limit)
        return [Order.model_validate(doc) for doc in docs]

    # -- fills ---------------------------------------------------------------------------------
    def add_fill(self, fill: Fill) -> bool:
        """An upsert rather than insert-and-catch: a duplicate-key error inside a transaction
        would abort the caller's whole transaction."""
        key = {"client_order_id": fill.client_order_id, "trade_id": fill.trade_id}

        def work() -> bool:
            try:
                result = self._fills.update_one(
                    key,
                    {"$setOnInsert": fill.model_dump(mode="json")},
                    upsert=True,
                    session=self._session(),
                )
            except DuplicateKeyError:  # a concurrent writer inserted it between our steps
                return False
            return result.upserted_id is not None

        return self._write(work)

    def list_fills(
        self, *, client_order_id: str | None = None, symbol: str | None = None
    ) -> list[Fill]:
        query = _query(client_order_id=client_order_id, symbol=symbol)
        docs = self._find(self._fills, query, ["timestamp", "trade_id"], None)
        return [Fill.model_validate(doc) for doc in docs]

    # -- positions -----------------------------------------------------------------------------
    def get_position(self, position_id: str) -> Position | None:
        doc = self._positions.find_one({"position_id": position_id}, session=self._session())
        return None if doc is None else Position.model_validate(_fields(doc))

    def save_position(
        self, position: Position, *, expected_version: int, events: Sequence[Event] = ()
    ) -> Position:
        check_version(expected_version)
        check_mode(self.mode, None, events)
        stored = position.model_copy(update={"version": expected_version + 1})
        doc = {**stored.model_dump(mode="json"), "_opened_us": micros(stored.opened_at)}
        key = {"position_id": position.position_id}

        def work() -> None:
            if expected_version == 0:
                self._create(self._positions, key, doc, "position")
            else:
                self._replace(self._positions, key, expected_version, doc, "position")
            self._insert_events(events)

        self._write(work)
        return stored

    def list_positions(
        self, *, status: PositionStatus | None = None, symbol: str | None = None
    ) -> list[Position]:
        status_value = None if status is None else PositionStatus(status).value
        query = _query(status=status_value, symbol=symbol)
        docs = self._find(self._positions, query, ["_opened_us", "position_id"], None)
        return [Position.model_validate(doc) for doc in docs]

    # -- events --------------------------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[Event]:
        check_mode(self.mode, None, events)
        return self._write(lambda: self._insert_events(events))

    def list_events(
        self,
        *,
        types: Iterable[EventType] | None = None,
        symbol: str | None = None,
        after_seq: int | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        query = _query(type=enum_values(EventType, types), symbol=symbol)
        if after_seq is not None:
            query["seq"] = {"$gt": after_seq}
        if since is not None:
            query["_created_us"] = {"$gte": micros(since)}
        if not check_limit(limit):
            return []
        return [
            Event.model_validate(doc) for doc in self._find(self._events, query, ["seq"], limit)
        ]

    def _insert_events(self, events: Sequence[Event]) -> list[Event]:
        session = self._session()
        stored: list[Event] = []
        for event in events:
            found = self._events.find_one({"event_id": event.event_id}, session=session)
            if found is None:
                doc = {
                    **event.model_dump(mode="json"),
                    "seq": self._next_seq(),
                    "_created_us": micros(event.created_at),
                }
                # DuplicateKeyError: a concurrent writer stored this event_id first; read theirs.
                with suppress(DuplicateKeyError):
                    self._events.update_one(
                        {"event_id": event.event_id},
                        {"$setOnInsert": doc},
                        upsert=True,
                        session=session,
                    )
                found = self._events.find_one({"event_id": event.event_id}, session=session)
                assert found is not None
            stored.append(Event.model_validate(_fields(found)))
        return stored

    def _next_seq(self) -> int:
        counter = self._counters.find_one_and_update(
            {"_id": "events"},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=self._session(),
        )
        assert counter is not None  # upsert=True with ReturnDocument.AFTER always returns one
        return int(counter["seq"])

    # -- state documents -----------------------------------------------------------------------
    def get_state(self, key: str) -> tuple[dict[str, Any], int] | None:
        doc = self._state.find_one({"_id": key}, session=self._session())
        return None if doc is None else (dict(doc["doc"]), int(doc["version"]))

    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        check_version(expected_version)
        new_version = expected_version + 1
        doc = {"_id": key, "doc": state_document(value), "version": new_version}

        def work() -> None:
            if expected_version == 0:
                self._create(self._state, {"_id": key}, doc, "state")
            else:
                self._replace(self._state, {"_id": key}, expected_version, doc, "state")

        self._write(work)
        return new_version

    def list_state(
        self, prefix: str, *, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[str, dict[str, Any], int]]:
        # An anchored regex on _id is an index range scan in MongoDB.
        found = self._state.find(
            {"_id": {"$regex": "^" + re.escape(prefix)}}, session=self._session()
        ).sort("_id", -1 if reverse else 1)
        if limit is not None:
            found = found.limit(limit)
        return [(str(d["_id"]), dict(d["doc"]), int(d["version"])) for d in found]

    # -- helpers -------------------------------------------------------------------------------
    def _create(self, coll: Collection[Doc], key: Doc, doc: Doc, what: str) -> None:
        try:
            coll.insert_one(doc, session=self._session())
        except DuplicateKeyError as exc:
            # A failed write aborts a server transaction, so read the winner outside it.
            stored = self._version(coll, key, in_session=False) or 0
            raise lost_cas(what, _key_text(key), 0, stored) from exc

    def _replace(
        self, coll: Collection[Doc], key: Doc, expected_version: int, doc: Doc, what: str
    ) -> None:
        result = coll.replace_one(
            {**key, "version": expected_version}, doc, session=self._session()
        )
        if result.matched_count == 1:
            return
        stored = self._version(coll, key)
        if stored is None:
            how = "insert_order()" if what == "order" else "expected_version=0"
            raise missing(what, _key_text(key), how)
        raise lost_cas(what, _key_text(key), expected_version, stored)

    def _version(self, coll: Collection[Doc], key: Doc, *, in_session: bool = True) -> int | None:
        session = self._session() if in_session else None
        found = coll.find_one(key, {"version": 1}, session=session)
        return None if found is None else int(found["version"])

    def _find(
        self, coll: Collection[Doc], query: Doc, sort: list[str], limit: int | None
    ) -> Iterator[Doc]:
        cursor = coll.find(query, session=self._session()).sort([(f, ASCENDING) for f in sort])
        if limit is not None:
            cursor = cursor.limit(limit)
        for doc in cursor:
            yield _fields(doc)


def _commit(session: ClientSession) -> None:
    """Retry the commit itself when its outcome is unknown (the driver's documented pattern);
    committing twice is safe."""
    for attempt in range(3):
        try:
            session.commit_transaction()
            return
        except PyMongoError as exc:
            if attempt < 2 and exc.has_error_label("UnknownTransactionCommitResult"):
                continue
            raise


def _query(**filters: str | list[str] | None) -> Doc:
    """Equality for strings, $in for lists (an empty list matches nothing); None: no filter."""
    query: Doc = {}
    for field, value in filters.items():
        if isinstance(value, list):
            query[field] = {"$in": value}
        elif value is not None:
            query[field] = value
    return query


def _order_doc(order: Order) -> Doc:
    return {**order.model_dump(mode="json"), "_created_us": micros(order.created_at)}


def _fields(doc: Mapping[str, Any]) -> Doc:
    """The model's fields: drop _id and our underscore-prefixed sort keys."""
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def _key_text(key: Doc) -> str:
    return str(next(iter(key.values())))
