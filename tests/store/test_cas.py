"""The compare-and-set retry helpers (kestrel.store.cas) on every backend: a lost race reruns
the decision on the fresh record until it stands; endless contention gives up with an error
naming what was being updated; every write is a compare-and-set on the version just read."""

from __future__ import annotations

from typing import Any

import pytest

from kestrel.errors import ConcurrentUpdate
from kestrel.store import StateChange, Store, retry_on_conflict, update_state

from .factories import make_event

KEY = "counter"


def bump(store: Store, raced: list[int], races: int) -> Any:
    """A `change` that adds one to the counter, but the first `races` times a racing writer
    (the same store, a real write) bumps the stored counter after we read it."""

    def change(doc: dict[str, Any] | None) -> StateChange[int]:
        value = (doc or {}).get("n", 0) + 1
        if len(raced) < races:
            found = store.get_state(KEY)
            racer = (found[0]["n"] if found else 0) + 100
            store.put_state(KEY, {"n": racer}, expected_version=found[1] if found else 0)
            raced.append(racer)
        return StateChange(result=value, value={"n": value})

    return change


def test_update_state_converges_under_a_racing_writer(store: Store) -> None:
    raced: list[int] = []
    result = update_state(store, KEY, bump(store, raced, races=3), what="the counter")
    # Three racer writes (100, 200, 300) each cost us an attempt; the fourth builds on 300.
    assert raced == [100, 200, 300]
    assert result == 301
    assert store.get_state(KEY) == ({"n": 301}, 4)


def test_update_state_gives_up_after_the_attempts_naming_what(store: Store) -> None:
    raced: list[int] = []
    with pytest.raises(ConcurrentUpdate, match=r"the counter kept changing.*\(5 attempts\)"):
        update_state(store, KEY, bump(store, raced, races=99), what="the counter", attempts=5)
    assert len(raced) == 5
    assert store.get_state(KEY) == ({"n": 500}, 5)  # only the racer's writes stood


def test_update_state_writes_nothing_when_change_says_so(store: Store) -> None:
    store.put_state(KEY, {"n": 7}, expected_version=0)
    seen: list[dict[str, Any] | None] = []

    def look(doc: dict[str, Any] | None) -> StateChange[str]:
        seen.append(doc)
        return StateChange(result="unchanged")

    assert update_state(store, KEY, look, what="the counter") == "unchanged"
    assert seen == [{"n": 7}]
    assert store.get_state(KEY) == ({"n": 7}, 1)


def test_update_state_appends_its_events_with_the_write(store: Store) -> None:
    event = make_event("counter:1")

    def first(doc: dict[str, Any] | None) -> StateChange[None]:
        assert doc is None
        return StateChange(result=None, value={"n": 1}, events=[event])

    update_state(store, KEY, first, what="the counter")
    assert store.get_state(KEY) == ({"n": 1}, 1)
    assert [e.event_id for e in store.list_events()] == ["counter:1"]


class RecordingStore:
    """The real store, with each put_state's expected_version noted (observes, never fakes)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.puts: list[tuple[str, int]] = []

    def put_state(self, key: str, value: dict[str, Any], *, expected_version: int) -> int:
        self.puts.append((key, expected_version))
        return self.inner.put_state(key, value, expected_version=expected_version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_update_state_always_compares_against_the_version_it_read(store: Store) -> None:
    recording = RecordingStore(store)
    raced: list[int] = []
    update_state(recording, KEY, bump(store, raced, races=2), what="the counter")  # type: ignore[arg-type]
    # create (0) lost to the racer's create, 1 lost to its update, then 2 stood.
    assert recording.puts == [(KEY, 0), (KEY, 1), (KEY, 2)]


def test_retry_on_conflict_reruns_the_attempt_until_it_stands(store: Store) -> None:
    store.put_state(KEY, {"n": 0}, expected_version=0)
    calls: list[int] = []

    def attempt() -> int:
        found = store.get_state(KEY)
        assert found is not None
        calls.append(found[1])
        if len(calls) < 3:  # a racer moves the record between our read and our write
            store.put_state(KEY, {"n": -1}, expected_version=found[1])
        return store.put_state(KEY, {"n": len(calls)}, expected_version=found[1])

    assert retry_on_conflict(attempt, what="the counter") == 4
    assert calls == [1, 2, 3]
    assert store.get_state(KEY) == ({"n": 3}, 4)


def test_retry_on_conflict_gives_up_and_lets_other_errors_through(store: Store) -> None:
    calls: list[int] = []

    def always_loses() -> None:
        calls.append(1)
        raise ConcurrentUpdate("lost")

    with pytest.raises(ConcurrentUpdate, match=r"order o-1 kept changing under us \(3 attempts"):
        retry_on_conflict(always_loses, what="order o-1", attempts=3)
    assert len(calls) == 3

    def broken() -> None:
        calls.append(2)
        raise ValueError("not a race")

    with pytest.raises(ValueError, match="not a race"):
        retry_on_conflict(broken, what="order o-1")
    assert calls.count(2) == 1
