"""The symbol lease (kestrel.execution.lease) on every backend: one holder at a time, named when it
refuses; renewal pushes the expiry out; an expired lease can be taken over, and its old
holder then finds out instead of renewing someone else's lease. Time is a controlled clock."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kestrel.execution.lease import (
    Lease,
    LeaseBusy,
    LeaseHolder,
    LeaseLost,
    acquire,
    current_holder,
    hold,
    release,
    renew,
    symbol_key,
)
from kestrel.mode import TradingMode
from kestrel.store import SQLiteStore, Store

from . import _workers
from .conftest import StoreFactory
from .test_sqlite_concurrency import run_processes

KEY = symbol_key("binance", "BTC/USDT")
TTL = 30.0
# hold() tests: the heartbeat thread renews every LONG/3 *real* seconds, i.e. never during the
# test, whose beats are explicit (held.beat()) on the controlled clock.
LONG = 3600.0


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store(TradingMode.DEMO)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def holder(run: str) -> LeaseHolder:
    return LeaseHolder.here("a1b2c3d4", run)


def test_a_held_lease_refuses_others_and_names_its_holder(store: Store, clock: Clock) -> None:
    cycle = holder("trading-cycle run 42")
    lease = acquire(store, KEY, cycle, ttl_s=TTL, now=clock)
    assert lease.expires_at == clock.now + timedelta(seconds=TTL)

    clock.advance(TTL - 1)
    with pytest.raises(LeaseBusy) as refused:
        acquire(store, KEY, holder("manual order by alice"), ttl_s=TTL, now=clock)
    message = str(refused.value)
    assert "BTC/USDT is being traded by trading-cycle run 42" in message
    assert f"pid {cycle.pid}" in message and "installation a1b2c3d4" in message
    assert "2026-01-01 12:00:30 UTC" in message  # until when
    assert refused.value.lease.holder == cycle
    assert current_holder(store, KEY, now=clock) == lease

    # Another symbol is another lease.
    acquire(store, symbol_key("binance", "ETH/USDT"), holder("monitor"), ttl_s=TTL, now=clock)


def test_renewal_pushes_the_expiry_out(store: Store, clock: Clock) -> None:
    lease = acquire(store, KEY, holder("cycle"), ttl_s=TTL, now=clock)
    clock.advance(20)
    lease = renew(store, lease, ttl_s=TTL, now=clock)
    assert lease.renewals == 1
    clock.advance(20)  # 40 s after taking it: past the first expiry, not the renewed one
    with pytest.raises(LeaseBusy):
        acquire(store, KEY, holder("other"), ttl_s=TTL, now=clock)
    clock.advance(10)  # exactly at the renewed expiry
    acquire(store, KEY, holder("other"), ttl_s=TTL, now=clock)


def test_an_expired_lease_is_taken_over_and_its_old_holder_learns_it(
    store: Store, clock: Clock
) -> None:
    stalled = acquire(store, KEY, holder("stalled cycle"), ttl_s=TTL, now=clock)
    clock.advance(TTL + 1)
    assert current_holder(store, KEY, now=clock) is None
    taker = acquire(store, KEY, holder("next cycle"), ttl_s=TTL, now=clock)

    with pytest.raises(LeaseLost, match="now held by next cycle"):
        renew(store, stalled, ttl_s=TTL, now=clock)
    release(store, stalled)  # too late: leaves the new holder's lease alone
    assert current_holder(store, KEY, now=clock) == taker


def test_release_frees_the_lease_at_once(store: Store, clock: Clock) -> None:
    lease = acquire(store, KEY, holder("manual"), ttl_s=TTL, now=clock)
    release(store, lease)
    assert current_holder(store, KEY, now=clock) is None
    acquire(store, KEY, holder("cycle"), ttl_s=TTL, now=clock)
    with pytest.raises(LeaseLost):
        renew(store, lease, ttl_s=TTL, now=clock)  # a released lease is not renewed


def test_hold_keeps_the_lease_while_working_and_releases_it(store: Store, clock: Clock) -> None:
    with hold(store, KEY, holder("cycle"), ttl_s=LONG, clock=clock) as held:
        clock.advance(LONG - 5)
        assert held.beat()  # what the heartbeat thread does every ttl/3
        clock.advance(LONG - 5)  # past the first expiry
        with pytest.raises(LeaseBusy, match="being traded by cycle"):
            acquire(store, KEY, holder("monitor"), ttl_s=LONG, now=clock)
        held.check()
    assert current_holder(store, KEY, now=clock) is None  # released on leaving


def test_hold_releases_on_error_and_reports_a_takeover(store: Store, clock: Clock) -> None:
    with pytest.raises(RuntimeError), hold(store, KEY, holder("cycle"), ttl_s=LONG, clock=clock):
        raise RuntimeError("boom")
    assert current_holder(store, KEY, now=clock) is None

    with hold(store, KEY, holder("slow"), ttl_s=LONG, clock=clock) as held:
        clock.advance(LONG)
        acquire(store, KEY, holder("taker"), ttl_s=LONG, now=clock)
        assert not held.beat()
        with pytest.raises(LeaseLost):
            held.check()  # before an irreversible step: stop, it is no longer ours
    stored = current_holder(store, KEY, now=clock)
    assert stored is not None and stored.holder.run == "taker"


def test_the_stored_lease_is_a_plain_readable_document(store: Store, clock: Clock) -> None:
    acquire(store, KEY, holder("trading-cycle run 42"), ttl_s=TTL, now=clock)
    found = store.get_state(KEY)
    assert found is not None
    doc, _ = found
    assert doc["holder"]["run"] == "trading-cycle run 42"
    assert Lease.model_validate(doc).expires_at == clock.now + timedelta(seconds=TTL)


def test_processes_racing_for_one_lease_have_exactly_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "kestrel_demo.sqlite3"
    SQLiteStore(path, TradingMode.DEMO).close()
    outcomes = run_processes(_workers.take_lease, path, KEY)
    assert sorted(outcomes) == ["busy", "busy", "busy", "won"]


def test_a_crashed_holder_on_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "kestrel_demo.sqlite3"
    SQLiteStore(path, TradingMode.DEMO).close()
    child = multiprocessing.get_context("spawn").Process(
        target=_workers.take_lease_and_die, args=(path, KEY)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 86
    store = SQLiteStore(path, TradingMode.DEMO)
    try:
        found = store.get_state(KEY)
        assert found is not None
        crashed = Lease.model_validate(found[0])
        assert crashed.holder.pid == child.pid and crashed.holder.is_dead()
        # 600 s before it expires, but its process is gone: no need to wait for the expiry.
        acquire(store, KEY, holder("restarted cycle"), ttl_s=TTL)
    finally:
        store.close()


def test_a_holder_elsewhere_is_never_judged_dead(store: Store, clock: Clock) -> None:
    here = holder("cycle on another machine")
    elsewhere = here.model_copy(update={"pid": 2**22 + 1, "process_space": "other-host/pid:[1]"})
    acquire(store, KEY, elsewhere, ttl_s=TTL, now=clock)
    assert not elsewhere.is_dead()
    with pytest.raises(LeaseBusy):
        acquire(store, KEY, holder("cycle here"), ttl_s=TTL, now=clock)
