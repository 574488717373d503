"""Compare-and-set retries: the one place that re-runs a read-modify-write lost to a racer.

Every write of shared state goes through a compare-and-set (`expected_version=`): a process
that read an old version loses with ConcurrentUpdate instead of overwriting a newer record.
The loser must re-read and decide again (the racer may have done the work already), so each
update is written as a function of what is stored now and run by one of these helpers:

- `update_state(store, key, change)`: the common shape, one state document. `change` gets
  the stored document (None if there is none yet) and says what to write, if anything.
- `retry_on_conflict(attempt)`: any other shape (orders, positions, several records in one
  transaction). `attempt` reads, decides and writes; ConcurrentUpdate out of it reruns it.

Both give up after `attempts` lost races with a ConcurrentUpdate naming `what` was being
updated: endless contention means something is wrong, and the caller's caller retries later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kestrel.errors import ConcurrentUpdate
from kestrel.models import Event
from kestrel.store.base import Store

__all__ = ["DEFAULT_ATTEMPTS", "StateChange", "retry_on_conflict", "update_state"]

DEFAULT_ATTEMPTS = 20


def retry_on_conflict[T](
    attempt: Callable[[], T], *, what: str, attempts: int = DEFAULT_ATTEMPTS
) -> T:
    """Run `attempt` until it finishes without ConcurrentUpdate, at most `attempts` times.

    `attempt` must re-read whatever it compares against on every call: retrying a write with
    the version read before the race would just lose again.
    """
    for _ in range(attempts):
        try:
            return attempt()
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{what} kept changing under us ({attempts} attempts); try again")


@dataclass(frozen=True)
class StateChange[T]:
    """What `update_state`'s `change` decided: `result` for the caller, and the document to
    write (None: write nothing) with the events to append in the same transaction."""

    result: T
    value: dict[str, Any] | None = None
    events: Sequence[Event] = field(default_factory=tuple)


def update_state[T](
    store: Store,
    key: str,
    change: Callable[[dict[str, Any] | None], StateChange[T]],
    *,
    what: str,
    attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """Read state `key`, let `change` decide, write its value with a compare-and-set on the
    version read (0: create), plus its events, atomically; rerun `change` on a lost race.

    Returns `change`'s result once its write (or its decision to write nothing) stands.
    """

    def attempt() -> T:
        found = store.get_state(key)
        decided = change(found[0] if found else None)
        if decided.value is None:
            return decided.result
        version = found[1] if found else 0
        if not decided.events:
            store.put_state(key, decided.value, expected_version=version)
            return decided.result
        with store.atomic():
            store.put_state(key, decided.value, expected_version=version)
            store.append_events(list(decided.events))
        return decided.result

    return retry_on_conflict(attempt, what=what, attempts=attempts)
