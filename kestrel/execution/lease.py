"""Leases: one actor at a time places orders for a symbol, across threads, processes and machines.

Why a lease in the store rather than a lock elsewhere: everything that places an order (the
trading cycle, a manual order from the CLI or Telegram, the position monitor's exits, the order
sync's protection) reaches the same store, whatever started it (a Prefect deployment, `kestrel
cycle`, a second worker, a second server). A Prefect concurrency limit only sees Prefect runs,
and a lock in memory only sees one process.

The lease covers the whole read-decide-place section: whoever holds it reads the store ("is an
order already live? a position open?"), decides, and places, and nobody else can act on the
symbol in between. So two cycles started together never both buy, and never both send the
same intent.

How it works: a small state document per (exchange account, symbol), changed only by the
store's compare-and-set (`put_state` with `expected_version`): atomic on SQLite and on MongoDB
with or without transactions. It names its holder (installation, what is running, process and
host) and an expiry. The holder renews it from a heartbeat thread while it works; a holder that
dies stops renewing, and once the lease has expired anyone may take it over; a holder that
is seen to be dead (a process of this machine, same process namespace, no longer running: a
crash, a kill) is taken over at once, so a restart after a crash does not wait for the
expiry. A refusal (`LeaseBusy`) names the real holder and until when it holds the lease.

Clocks: expiry is compared with the taker's clock, so machines sharing a store must agree on
the time to well within the lease's duration (NTP; the default is 30 s).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from kestrel.errors import KestrelError
from kestrel.ids import installation_id
from kestrel.models import utcnow
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DEFAULT_TTL_S = 30.0
#: how long an operator's order waits for a symbol another run is trading (a cycle holds it
#: for seconds), before it is refused with the holder's name
OPERATOR_WAIT_S = 10.0
KEY_PREFIX = "lease:"
_CAS_TRIES = 20
_POLL_S = 0.1


class LeaseHolder(BaseModel):
    """Who holds a lease, readable by a human (`describe`). `token` tells two holdings apart,
    even two of one process: only the holding with the same token may renew or release."""

    installation: str
    run: str = Field(description="what is acting, e.g. 'trading-cycle run 3f2a...'")
    host: str
    pid: int
    token: str
    process_space: str | None = Field(
        default=None, description="host and pid namespace: where `pid` can be checked"
    )

    @classmethod
    def here(cls, installation: str, run: str) -> LeaseHolder:
        """A new holding by this process."""
        return cls(
            installation=installation,
            run=run,
            host=socket.gethostname(),
            pid=os.getpid(),
            token=uuid.uuid4().hex,
            process_space=_process_space(),
        )

    def is_dead(self) -> bool:
        """True only when certain: its pid is in our process space and runs no more. A
        holder elsewhere (another machine, container or OS) is never judged: it expires."""
        if self.process_space is None or self.process_space != _process_space():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, owned by someone else
            return False
        return False

    def describe(self) -> str:
        return f"{self.run} (pid {self.pid} on {self.host}, installation {self.installation})"


class Lease(BaseModel):
    """The stored lease document. `released` leases and expired ones are free to take."""

    key: str
    holder: LeaseHolder
    acquired_at: datetime
    expires_at: datetime
    renewals: int = 0
    released: bool = False

    def free_at(self, now: datetime) -> bool:
        return self.released or self.expires_at <= now or self.holder.is_dead()


class LeaseBusy(KestrelError):
    """Someone else holds the lease: the message names them and until when."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        super().__init__(
            f"{lease.key.removeprefix(KEY_PREFIX)} is being traded by "
            f"{lease.holder.describe()}; its lease runs until "
            f"{lease.expires_at:%Y-%m-%d %H:%M:%S} UTC unless renewed"
        )


class LeaseLost(KestrelError):
    """Our lease expired and someone else took it over (we stalled past its expiry)."""


def _process_space() -> str | None:
    """This host and pid namespace (Linux), where a pid names one process; None elsewhere."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{socket.gethostname()}/{namespace}"


def symbol_key(exchange_id: str, symbol: str) -> str:
    """One lease per exchange account and symbol (a store holds one account per exchange)."""
    return f"{KEY_PREFIX}{exchange_id}:{symbol}"


# -- the one compare-and-set ------------------------------------------------------------------


def _swap(store: Store, key: str, change: Callable[[Lease | None], Lease]) -> Lease:
    """Read the lease, let `change` compute the next one (or raise), write it only if nobody
    wrote in between; on a lost race, re-read and decide again. Not inside store.atomic():
    a lost compare-and-set there would doom the caller's transaction."""

    def write(doc: dict[str, Any] | None) -> StateChange[Lease]:
        new = change(None if doc is None else Lease.model_validate(doc))
        return StateChange(result=new, value=new.model_dump(mode="json"))

    return update_state(store, key, write, what=f"lease {key}", attempts=_CAS_TRIES)


def acquire(
    store: Store,
    key: str,
    holder: LeaseHolder,
    *,
    ttl_s: float = DEFAULT_TTL_S,
    now: Clock = utcnow,
) -> Lease:
    """Take the lease if it is free (never held, released, or expired); LeaseBusy otherwise."""

    def take(current: Lease | None) -> Lease:
        moment = now()
        held = current is not None and not current.free_at(moment)
        if held and current is not None and current.holder.token != holder.token:
            raise LeaseBusy(current)
        if current is not None and not current.released and current.holder.token != holder.token:
            log.warning(
                "lease %s: taking over from %s (expired at %s, or its process has ended)",
                key,
                current.holder.describe(),
                current.expires_at,
            )
        return Lease(
            key=key,
            holder=holder,
            acquired_at=moment,
            expires_at=moment + timedelta(seconds=ttl_s),
        )

    return _swap(store, key, take)


def renew(
    store: Store, lease: Lease, *, ttl_s: float = DEFAULT_TTL_S, now: Clock = utcnow
) -> Lease:
    """Push our lease's expiry out; LeaseLost if it is no longer ours (or was released)."""

    def extend(current: Lease | None) -> Lease:
        if current is None or current.released or current.holder.token != lease.holder.token:
            by = "nobody" if current is None else current.holder.describe()
            raise LeaseLost(f"lease {lease.key} is no longer ours (now held by {by})")
        return current.model_copy(
            update={
                "expires_at": now() + timedelta(seconds=ttl_s),
                "renewals": current.renewals + 1,
            }
        )

    return _swap(store, lease.key, extend)


def release(store: Store, lease: Lease) -> None:
    """Give the lease back; a lease someone else has taken over meanwhile is left alone."""

    def give_back(current: Lease | None) -> Lease:
        if current is None or current.holder.token != lease.holder.token:
            raise LeaseLost(f"lease {lease.key} was taken over before we released it")
        return current.model_copy(update={"released": True})

    try:
        _swap(store, lease.key, give_back)
    except LeaseLost as exc:
        log.warning("%s", exc)


def current_holder(store: Store, key: str, *, now: Clock = utcnow) -> Lease | None:
    """The live lease on `key`, or None when it is free (for status displays)."""
    found = store.get_state(key)
    if found is None:
        return None
    lease = Lease.model_validate(found[0])
    return None if lease.free_at(now()) else lease


# -- holding a lease for a block of work ------------------------------------------------------


class Held:
    """A lease being held, kept alive by a heartbeat thread that renews it every third of its
    duration. `check()` before an irreversible step raises LeaseLost if the heartbeat found
    that someone took the lease over (this process stalled past the expiry)."""

    def __init__(self, store: Store, lease: Lease, ttl_s: float, clock: Clock) -> None:
        self.store, self.lease, self.ttl_s, self.clock = store, lease, ttl_s, clock
        self.lost: LeaseLost | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-heartbeat {lease.key}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        if self.lost is not None:
            raise self.lost

    def beat(self) -> bool:
        """Renew once; False once the lease is lost (no point renewing any more)."""
        try:
            self.lease = renew(self.store, self.lease, ttl_s=self.ttl_s, now=self.clock)
        except LeaseLost as exc:
            log.error("%s", exc)
            self.lost = exc
            return False
        except Exception as exc:  # the store is unreachable: try again on the next beat
            log.warning("lease %s: renewal failed: %s", self.lease.key, exc)
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3) and self.beat():
            pass


@contextmanager
def hold(
    store: Store,
    key: str,
    holder: LeaseHolder,
    *,
    ttl_s: float = DEFAULT_TTL_S,
    wait_s: float = 0.0,
    clock: Clock = utcnow,
) -> Iterator[Held]:
    """Hold the lease for the block (renewed while it runs, released after, even on error).

    `wait_s`: how long to keep asking while someone else holds it, before LeaseBusy. Waiting
    only helps liveness (the holder is likely done in a moment); correctness never depends
    on it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lease = acquire(store, key, holder, ttl_s=ttl_s, now=clock)
            break
        except LeaseBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_S)
    held = Held(store, lease, ttl_s, clock)
    held.start()
    _HELD.set((*_HELD.get(), held))
    try:
        yield held
    finally:
        _HELD.set(tuple(h for h in _HELD.get() if h is not held))
        held.stop()
        release(store, held.lease)


#: the leases held by this context (this thread, or a task run in a copy of its context, as
#: Prefect's thread pool does): what lets `symbol_lease_once` see that its caller holds one
_HELD: ContextVar[tuple[Held, ...]] = ContextVar("kestrel_held_leases", default=())


def held_here(key: str) -> Held | None:
    """The holding of `key` this context is inside (`hold`), or None."""
    for held in reversed(_HELD.get()):
        if held.lease.key == key:
            return held
    return None


def confirm(store: Store, lease: Lease, *, now: Clock = utcnow) -> None:
    """LeaseLost unless the stored lease is still this holding (same token, not released,
    not expired): a holding passed along (to a task in another process) is checked here."""
    found = store.get_state(lease.key)
    current = None if found is None else Lease.model_validate(found[0])
    if current is None or current.holder.token != lease.holder.token or current.free_at(now()):
        by = "nobody" if current is None else current.holder.describe()
        raise LeaseLost(f"lease {lease.key} is no longer ours (now held by {by})")


def symbol_lease(
    store: Store, exchange_id: str, symbol: str, run: str, *, wait_s: float = 0.0
) -> AbstractContextManager[Held]:
    """Hold the lease of `symbol` on this exchange account, as `run` of this installation:
    what every path that places orders wraps its read-decide-place section in."""
    holder = LeaseHolder.here(installation_id(store), run)
    return hold(store, symbol_key(exchange_id, symbol), holder, wait_s=wait_s)


@contextmanager
def symbol_lease_once(
    store: Store,
    exchange_id: str,
    symbol: str,
    run: str,
    *,
    lease: Lease | None = None,
    wait_s: float = 0.0,
) -> Iterator[Lease]:
    """The symbol's lease for a block, re-entrant: a caller that already holds it (this
    context is inside `symbol_lease`, or it passes its `lease` along, e.g. to a task on
    another worker) goes on under that holding once the store confirms it is still theirs;
    anyone else takes the lease for the block, or gets LeaseBusy naming the holder."""
    key = symbol_key(exchange_id, symbol)
    if lease is not None and lease.key != key:
        raise ValueError(f"the lease passed is for {lease.key}, not {key}")
    inherited = held_here(key)
    if inherited is not None:
        inherited.check()
    mine = lease or (inherited.lease if inherited is not None else None)
    if mine is not None:
        confirm(store, mine)
        yield mine
        return
    with symbol_lease(store, exchange_id, symbol, run, wait_s=wait_s) as held:
        yield held.lease
