"""The live engine's drain pacing, on a real store and the fake Telegram server: a drain is
due at once for new events, not again while everything seen is delivered, and a held
(quiet-hours) event is retried only every `retry_s` on the pacer's own clock."""

from __future__ import annotations

from fakes.telegram_server import FakeTelegramServer
from kestrel.notify.outbox import drain_outbox
from kestrel.notify.pacer import DrainPacer
from kestrel.store.sqlite import SQLiteStore

from .helpers import fill_event, make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(store: SQLiteStore, server: FakeTelegramServer) -> None:
    drain_outbox(store, make_settings(server), token=server.token)


def test_new_events_are_due_at_once_and_settled_ones_not_again(
    store: SQLiteStore, server: FakeTelegramServer
) -> None:
    clock = Clock()
    pacer = DrainPacer(store, retry_s=60, clock=clock)
    assert pacer.due() is None  # an empty outbox

    store.append_events([fill_event(1), fill_event(2)])
    assert pacer.due() == "2 new event(s)"
    drain(store, server)
    pacer.drained()

    assert pacer.due() is None  # delivered: nothing pending
    clock.now += 3600
    assert pacer.due() is None
    store.append_events([fill_event(3)])
    assert pacer.due() == "1 new event(s)"


def test_a_held_event_is_retried_every_retry_s_not_every_check(
    store: SQLiteStore, server: FakeTelegramServer
) -> None:
    clock = Clock()
    pacer = DrainPacer(store, retry_s=60, clock=clock)
    store.append_events([fill_event(1)])
    assert pacer.due() is not None
    server.fail_next(10, "5xx")  # Telegram down: the event stays pending
    drain(store, server)
    pacer.drained()

    assert pacer.due() is None  # pending, but retried only after retry_s
    clock.now += 59
    assert pacer.due() is None
    clock.now += 1
    assert pacer.due() == "events still pending"
