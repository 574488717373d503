"""Two notification runs at once, and a run killed between sending and recording: the
cases where exactly-once depends on the store's compare-and-set claims and leases."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from fakes.telegram_server import FakeTelegramServer, FaultKind
from kestrel.models import utcnow
from kestrel.notify.outbox import (
    Delivery,
    DeliveryStatus,
    delivery_key,
    drain_with_bot,
    get_delivery,
)
from kestrel.store.sqlite import SQLiteStore

from . import _workers
from .helpers import NOTIFY_CHAT, make_settings, ref, store_events

REPEAT_MARK = "possible repeat"


def settings_kwargs(server: FakeTelegramServer, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "api_base_url": server.base_url,
        "notify_chat_id": NOTIFY_CHAT,
        "cursor_grace_s": 0,
        "retry_backoff_s": 0,
    }
    values.update(overrides)
    return values


def test_two_runs_at_once_deliver_each_event_once(
    server: FakeTelegramServer, store: SQLiteStore, store_path: Path
) -> None:
    events = store_events(store, 40)
    server.fail_next(3, "5xx")  # some turbulence while they race
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: Any = ctx.Queue()
    kwargs = settings_kwargs(server)
    workers = [
        ctx.Process(target=_workers.drain_once, args=(store_path, kwargs, barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    reports = [report for _, report in outcomes]
    assert sum(r["sent"] for r in reports) == len(events)
    per_ref = Counter(
        e.seq for e in events for m in server.sent_messages() if ref(e) + " " in m.text + " "
    )
    assert per_ref == Counter({e.seq: 1 for e in events})
    assert len(server.sent_messages()) == len(events)
    for event in events:
        record = get_delivery(store, event.event_id)
        assert record is not None and record.status is DeliveryStatus.SENT


def _kill_mid_send(server: FakeTelegramServer, store_path: Path, fault: FaultKind) -> None:
    """Run a drain in a child process and SIGKILL it while sendMessage is in flight."""
    server.fail_next(1, fault)
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    child = ctx.Process(
        target=_workers.drain_once,
        args=(store_path, settings_kwargs(server, request_timeout_s=30), None, results),
    )
    child.start()
    try:
        server.wait_for_request("sendMessage", timeout=60)
        if fault == "accept_hang":
            server.wait_for_messages(1, timeout=10)
    finally:
        child.kill()
        child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL, "the child finished before it was killed"


def test_crash_after_telegram_accepted_resends_marked_as_possible_repeat(
    server: FakeTelegramServer, store: SQLiteStore, store_path: Path
) -> None:
    """Documented trade-off: the outcome of a send whose sender died is unknown (the Bot API
    has no idempotency key and a bot cannot read the chat), so the event is resent, marked,
    with the same #seq. Never lost; a repeat is visible as such."""
    events = store_events(store, 2)
    _kill_mid_send(server, store_path, "accept_hang")
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.status is DeliveryStatus.SENDING

    settings = make_settings(server)
    too_soon = asyncio.run(drain_with_bot(store, settings))
    assert too_soon.sent == 0 and too_soon.busy == 1  # the dead sender's lease still holds

    after_lease = asyncio.run(
        drain_with_bot(
            store, settings, clock=lambda: utcnow() + timedelta(seconds=settings.lease_s + 1)
        )
    )

    assert after_lease.sent == 2 and after_lease.repeats == 1
    first, repeat, second_event = server.sent_messages()
    assert ref(events[0]) in first.text and REPEAT_MARK not in first.text
    assert ref(events[0]) in repeat.text and REPEAT_MARK in repeat.text
    assert ref(events[1]) in second_event.text and REPEAT_MARK not in second_event.text
    record = get_delivery(store, events[0].event_id)
    assert record is not None and record.status is DeliveryStatus.SENT
    assert record.possible_repeat and record.attempts == 2


def test_crash_while_telegram_had_not_accepted_sends_one_marked_message(
    server: FakeTelegramServer, store: SQLiteStore, store_path: Path
) -> None:
    events = store_events(store, 1)
    _kill_mid_send(server, store_path, "hang")
    assert server.sent_messages() == []

    settings = make_settings(server)
    report = asyncio.run(
        drain_with_bot(
            store, settings, clock=lambda: utcnow() + timedelta(seconds=settings.lease_s + 1)
        )
    )

    assert report.sent == 1
    (only,) = server.sent_messages()
    assert ref(events[0]) in only.text and REPEAT_MARK in only.text


def test_crash_after_claim_before_send_resends_unmarked(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    """A claim whose owner died before it wrote `sending` provably sent nothing."""
    (event,) = store_events(store, 1)
    crashed = Delivery(
        event_id=event.event_id,
        seq=event.seq or 0,
        status=DeliveryStatus.CLAIMED,
        owner="dead-host:1:abc",
        nonce="n1",
        lease_until=utcnow() - timedelta(seconds=1),
    )
    key = delivery_key(event.event_id)
    store.put_state(key, crashed.model_dump(mode="json"), expected_version=0)

    report = asyncio.run(drain_with_bot(store, make_settings(server)))

    assert report.sent == 1 and report.repeats == 0
    (only,) = server.sent_messages()
    assert REPEAT_MARK not in only.text
