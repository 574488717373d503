"""429s are honoured on the retry path (tenacity) of both the outbox and the command bot,
with the real PTB client against the fake Bot API. Time is the test's: the waits go to an
injected sleep that only records them, and the outbox reads a fixed clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fakes.telegram_server import FakeTelegramServer
from kestrel.models import utcnow
from kestrel.notify.outbox import DeliveryStatus, drain_with_bot, get_delivery
from kestrel.store.sqlite import SQLiteStore

from .helpers import OWNER_CHAT, make_settings, running_bot, store_events

RETRY_AFTER = 20  # seconds: far longer than any test could afford to really wait


def test_outbox_waits_what_the_429_asks_holding_its_claim_meanwhile(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    settings = make_settings(server)
    [event] = store_events(store, 1)
    server.fail_next(1, "429", retry_after=RETRY_AFTER)
    now = utcnow()
    seen: list[tuple[float, DeliveryStatus, timedelta]] = []

    async def record_wait(seconds: float) -> None:
        record = get_delivery(store, event.event_id)
        assert record is not None and record.lease_until is not None
        seen.append((seconds, record.status, record.lease_until - now))

    report = asyncio.run(drain_with_bot(store, settings, clock=lambda: now, sleep=record_wait))

    assert report.sent == 1 and len(server.sent_messages()) == 1
    lease = timedelta(seconds=settings.lease_s + RETRY_AFTER)
    assert seen == [(float(RETRY_AFTER), DeliveryStatus.CLAIMED, lease)]
    record = get_delivery(store, event.event_id)
    assert record is not None and record.attempts == 2 and not record.possible_repeat


def test_a_429_on_the_last_attempt_makes_the_event_due_after_retry_after(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    settings = make_settings(server, send_attempts_per_run=1)
    [event] = store_events(store, 1)
    server.fail_next(1, "429", retry_after=RETRY_AFTER)
    now = utcnow()
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    report = asyncio.run(drain_with_bot(store, settings, clock=lambda: now, sleep=record_wait))

    assert report.sent == 0 and report.stopped is not None and report.transient
    assert waits == []  # the run ends rather than sleep past its budget
    record = get_delivery(store, event.event_id)
    assert record is not None and record.status is DeliveryStatus.PENDING
    assert record.not_before == now + timedelta(seconds=RETRY_AFTER)


def test_bot_reply_waits_what_the_429_asks(server: FakeTelegramServer, store: SQLiteStore) -> None:
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    with running_bot(server, make_settings(server), store, sleep=record_wait):
        server.fail_next(1, "429", retry_after=RETRY_AFTER)
        server.inject_message(OWNER_CHAT, "/help")
        server.wait_for_messages(1, timeout=30)

    [reply] = server.sent_messages(OWNER_CHAT)
    assert "/status" in reply.text
    assert waits == [float(RETRY_AFTER)]
