"""Outbox delivery with the real PTB client against the fake Bot API and a real SQLite store:
every event once, in order, through 5xx, 429 and timeouts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from fakes.telegram_server import FakeTelegramServer
from kestrel.models import utcnow
from kestrel.notify.outbox import (
    DeliveryStatus,
    drain_outbox,
    drain_with_bot,
    get_delivery,
    notify_cursor,
)
from kestrel.notify.settings import TelegramSettings
from kestrel.store.sqlite import SQLiteStore

from .helpers import NOTIFY_CHAT, make_settings, ref, store_events

REPEAT_MARK = "possible repeat"


def refs_seen(server: FakeTelegramServer) -> list[str]:
    return [m.text.split("#")[1].split(" ")[0] for m in server.sent_messages()]


def test_each_event_is_sent_once_in_order_and_recorded(
    server: FakeTelegramServer, store: SQLiteStore, settings: TelegramSettings
) -> None:
    events = store_events(store, 3)

    first = drain_outbox(store, settings)
    second = drain_outbox(store, settings)

    messages = server.sent_messages(NOTIFY_CHAT)
    assert [m.raw_text.count(ref(e)) for m, e in zip(messages, events, strict=True)] == [1, 1, 1]
    assert first.sent == 3 and second.sent == 0
    assert notify_cursor(store) == events[-1].seq
    for event, message in zip(events, messages, strict=True):
        record = get_delivery(store, event.event_id)
        assert record is not None
        assert record.status is DeliveryStatus.SENT
        assert record.message_id == message.message_id
        assert record.attempts == 1 and not record.possible_repeat
    text = messages[0].text
    assert "Order filled" in text and "BTC/USDT" in text and "64251.5" in text
    assert "PRIMARY" in text and "order_history" in text and "DEMO" in text


def test_5xx_is_retried_without_loss_or_duplicate(
    server: FakeTelegramServer, store: SQLiteStore, settings: TelegramSettings
) -> None:
    events = store_events(store, 2)
    server.fail_next(2, "5xx", status=502)

    report = drain_outbox(store, settings)

    assert report.sent == 2 and report.repeats == 0
    assert sorted(refs_seen(server)) == sorted(str(e.seq) for e in events)
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.attempts == 3 and not record.possible_repeat
    assert all(REPEAT_MARK not in m.text for m in server.sent_messages())


def test_5xx_beyond_the_run_budget_waits_for_the_next_run(
    server: FakeTelegramServer, store: SQLiteStore, server_settings_budget: TelegramSettings
) -> None:
    events = store_events(store, 2)
    server.fail_next(2, "5xx")  # exactly the per-run budget

    report = drain_outbox(store, server_settings_budget)
    assert report.sent == 0 and report.stopped is not None and report.transient
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.status is DeliveryStatus.PENDING

    later = asyncio.run(
        drain_with_bot(store, server_settings_budget, clock=lambda: utcnow() + timedelta(hours=1))
    )
    assert later.sent == 2
    assert refs_seen(server) == [str(e.seq) for e in events]  # order kept across runs


@pytest.fixture
def server_settings_budget(server: FakeTelegramServer) -> TelegramSettings:
    return make_settings(server, send_attempts_per_run=2)


def test_429_waits_retry_after_then_sends_once(
    server: FakeTelegramServer, store: SQLiteStore, settings: TelegramSettings
) -> None:
    events = store_events(store, 2)
    server.fail_next(1, "429", retry_after=1)
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    report = asyncio.run(drain_with_bot(store, settings, sleep=recording_sleep))

    assert report.sent == 2
    assert waits == [1.0]
    assert refs_seen(server) == [str(e.seq) for e in events]


def test_long_429_ends_the_run_and_resumes_after_retry_after(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    settings = make_settings(server, max_retry_after_s=5)
    events = store_events(store, 2)
    server.fail_next(1, "429", retry_after=30)

    report = drain_outbox(store, settings)
    assert report.sent == 0 and report.stopped and "rate limited" in report.stopped
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.status is DeliveryStatus.PENDING
    assert record.not_before is not None and record.not_before > utcnow() + timedelta(seconds=20)

    too_early = drain_outbox(store, settings)
    assert too_early.sent == 0 and too_early.deferred == 1  # order kept: nothing overtakes it

    after = asyncio.run(
        drain_with_bot(store, settings, clock=lambda: utcnow() + timedelta(seconds=31))
    )
    assert after.sent == 2
    assert refs_seen(server) == [str(e.seq) for e in events]


def test_timeout_without_delivery_resends_once_marked_as_possible_repeat(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    """The server never answered (and never delivered): the client cannot know that, so the
    resend carries the possible-repeat mark; the user still gets exactly one message."""
    settings = make_settings(server, request_timeout_s=0.5)
    events = store_events(store, 1)
    server.fail_next(1, "hang")

    report = drain_outbox(store, settings)

    messages = server.sent_messages()
    assert report.sent == 1 and len(messages) == 1
    assert REPEAT_MARK in messages[0].text and ref(events[0]) in messages[0].text
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.attempts == 2 and record.possible_repeat


def test_accepted_then_dropped_is_the_documented_marked_repeat(
    server: FakeTelegramServer, store: SQLiteStore, settings: TelegramSettings
) -> None:
    """Telegram delivered but the answer was lost. sendMessage has no idempotency key, so
    Kestrel resends (never loses) and marks the second copy with the same #seq."""
    events = store_events(store, 1)
    server.fail_next(1, "drop")

    drain_outbox(store, settings)

    first, second = server.sent_messages()
    assert REPEAT_MARK not in first.text and REPEAT_MARK in second.text
    assert ref(events[0]) in first.text and ref(events[0]) in second.text
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.message_id == second.message_id


def test_blocked_chat_stops_the_run_and_keeps_the_events(
    server: FakeTelegramServer, store: SQLiteStore, settings: TelegramSettings
) -> None:
    from kestrel.errors import DeliveryBlocked

    events = store_events(store, 2)
    server.forbid_chat(NOTIFY_CHAT)

    report = drain_outbox(store, settings)

    assert report.sent == 0 and report.stopped and not report.transient
    with pytest.raises(DeliveryBlocked, match="blocked"):
        report.raise_for_stop()
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.status is DeliveryStatus.PENDING
    assert get_delivery(store, events[1].event_id) is None
    assert notify_cursor(store) == 0
