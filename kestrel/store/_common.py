"""Rules both backends share, kept in one place so SQLite and MongoDB cannot drift apart."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kestrel.errors import ConcurrentUpdate, NotFound, StoreError
from kestrel.mode import TradingMode
from kestrel.models import Event, Order

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def doomed_error(cause: BaseException) -> StoreError:
    """What leaving the outermost atomic() raises when a nested block failed and the caller
    carried on regardless: the work is rolled back, so it must not look committed. A lost
    compare-and-set stays a ConcurrentUpdate, so the caller's re-read-and-retry loop still
    catches it."""
    kind = ConcurrentUpdate if isinstance(cause, ConcurrentUpdate) else StoreError
    return kind(
        f"a nested store.atomic() block raised {type(cause).__name__}: {cause}; the whole "
        "transaction was rolled back (catch store errors outside atomic(), not inside it)"
    )


class AtomicNesting(threading.local):
    """Per-thread atomic() nesting, the same in both backends: how many blocks deep this
    thread is, and what escaped a nested block. Backends add their connection or session."""

    depth: int = 0
    doomed: BaseException | None = None  # what escaped a nested block

    @contextmanager
    def join(self) -> Iterator[None]:
        """A nested atomic() block: it joins the outer transaction, and an exception leaving
        it dooms the whole transaction even if the outer block swallows it."""
        self.depth += 1
        try:
            yield
        except BaseException as exc:
            self.doomed = self.doomed or exc
            raise
        finally:
            self.depth -= 1

    def raise_if_doomed(self) -> None:
        """Before the outermost block commits: a nested block failed, so nothing may commit."""
        if self.doomed is not None:
            raise doomed_error(self.doomed) from self.doomed


def micros(moment: datetime) -> int:
    """Integer microseconds since the epoch: an exact, timezone-proof sort and filter key.
    Naive datetimes are taken as UTC (Kestrel only ever creates aware UTC ones)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def check_mode(store_mode: TradingMode, order: Order | None, events: Sequence[Event]) -> None:
    """Refuse records of the other mode: a REAL order must never land in the DEMO database
    (or the reverse), whatever the caller's ContextVar said."""
    records: list[Order | Event] = [*events] if order is None else [order, *events]
    for record in records:
        if record.mode != store_mode:
            kind = type(record).__name__
            key = record.client_order_id if isinstance(record, Order) else record.event_id
            raise StoreError(
                f"{kind} {key!r} is {record.mode} but this store holds {store_mode} data; "
                f"write it inside trading_mode({record.mode.value!r})"
            )


def check_version(expected_version: int) -> None:
    if expected_version < 0:
        raise ValueError(f"expected_version must be >= 0, got {expected_version}")


def check_limit(limit: int | None) -> bool:
    """False when the query can only return nothing (limit 0); negative limits are bugs."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    return limit != 0


def enum_values[E: StrEnum](kind: type[E], items: Iterable[E | str] | None) -> list[str] | None:
    """None stays None (no filter); an empty iterable becomes [] (matches nothing)."""
    return None if items is None else [kind(item).value for item in items]


def state_document(value: dict[str, Any]) -> dict[str, Any]:
    """State documents hold plain JSON values so both backends return exactly what they were
    given; Decimals and datetimes must be turned into strings first (model_dump(mode="json"))."""
    if not isinstance(value, dict):
        raise TypeError(f"a state document must be a dict, got {type(value).__name__}")
    try:
        normalised: dict[str, Any] = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"state documents hold JSON values only (str, int, float, bool, None, list, dict "
            f'with str keys): {exc}; store Decimals as str or use model_dump(mode="json")'
        ) from exc
    return normalised


def lost_cas(what: str, key: str, expected_version: int, stored_version: int) -> StoreError:
    return ConcurrentUpdate(
        f"{what} {key!r} is at version {stored_version}, not {expected_version}: "
        "somebody else changed it first; re-read and retry"
    )


def missing(what: str, key: str, how_to_create: str) -> StoreError:
    """A CAS update of a record that does not exist is a bug, not a race (nothing is ever
    deleted), so it is NotFound rather than ConcurrentUpdate: retrying cannot help."""
    return NotFound(f"no {what} {key!r} in this store; create it first with {how_to_create}")
