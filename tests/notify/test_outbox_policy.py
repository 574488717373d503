"""What is sent and when: event-type filters, alerts-only, quiet hours (held, then sent),
and events too old to be worth sending."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from fakes.telegram_server import FakeTelegramServer
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, utcnow
from kestrel.notify.outbox import DeliveryStatus, drain_outbox, drain_with_bot, get_delivery
from kestrel.store.sqlite import SQLiteStore

from .helpers import fill_event, make_settings, ref


def alert(n: int, kind: EventType = EventType.EMERGENCY_STOP_SET) -> Event:
    return Event(
        event_id=f"alert-{n}",
        type=kind,
        mode=TradingMode.DEMO,
        message="emergency stop SET by telegram:1001:owner: going to sleep",
        data={"by": "telegram:1001:owner", "reason": "going to sleep"},
    )


def noise(n: int) -> Event:
    return Event(
        event_id=f"decision-{n}",
        type=EventType.TRADE_HELD,
        mode=TradingMode.DEMO,
        symbol="BTC/USDT",
        reasons=["SKIP_NO_SIGNAL"],
    )


def test_unwanted_types_are_recorded_as_skipped_not_sent(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    held, fill, _stop = store.append_events([noise(1), fill_event(1), alert(1)])

    report = drain_outbox(store, make_settings(server))

    assert report.sent == 2 and report.skipped == 1
    assert [ref(fill) in m.text for m in server.sent_messages()] == [True, False]
    record = get_delivery(store, held.event_id)
    assert record is not None and record.status is DeliveryStatus.SKIPPED
    assert record.note == "filtered by settings"


def test_alerts_only_sends_alerts_and_daily_summaries(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    summary = Event(event_id="daily_summary:x", type=EventType.DAILY_SUMMARY, mode=TradingMode.DEMO)
    fill, stop, daily = store.append_events([fill_event(1), alert(1), summary])

    drain_outbox(store, make_settings(server, alerts_only=True))

    texts = [m.text for m in server.sent_messages()]
    assert len(texts) == 2
    assert ref(stop) in texts[0] and "EMERGENCY STOP SET" in texts[0]
    assert ref(daily) in texts[1] and "Daily report" in texts[1]
    skipped = get_delivery(store, fill.event_id)
    assert skipped is not None and skipped.status is DeliveryStatus.SKIPPED


def test_quiet_hours_hold_events_and_deliver_them_afterwards(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    settings = make_settings(
        server, quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0), timezone="UTC"
    )
    night = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    morning = datetime(2026, 3, 5, 7, 5, tzinfo=UTC)
    fill = fill_event(1).model_copy(update={"created_at": night})
    stop = alert(1).model_copy(update={"created_at": night + timedelta(minutes=1)})
    fill, stop = store.append_events([fill, stop])

    at_night = asyncio.run(
        drain_with_bot(store, settings, clock=lambda: night + timedelta(hours=1))
    )

    assert at_night.held == 1 and at_night.sent == 1  # the emergency stop is never held
    (urgent,) = server.sent_messages()
    assert ref(stop) in urgent.text
    assert get_delivery(store, fill.event_id) is None  # held, not dropped

    in_the_morning = asyncio.run(drain_with_bot(store, settings, clock=lambda: morning))

    assert in_the_morning.sent == 1
    later = server.sent_messages()[1]
    assert ref(fill) in later.text and "held during quiet hours" in later.text


def test_events_older_than_max_age_are_skipped(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    old = fill_event(1).model_copy(update={"created_at": utcnow() - timedelta(days=3)})
    (stored,) = store.append_events([old])

    report = drain_outbox(store, make_settings(server, max_event_age_h=48))

    assert report.sent == 0 and report.skipped == 1 and server.sent_messages() == []
    record = get_delivery(store, stored.event_id)
    assert record is not None and record.note.startswith("older than 48")


def test_the_cursor_stays_behind_young_events(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    """A backend could make a lower seq visible late; the cursor never passes fresh events,
    and the rescan finds them already settled rather than sending them again."""
    _first, second = store.append_events([fill_event(1), fill_event(2)])
    settings = make_settings(server, cursor_grace_s=30)

    report = drain_outbox(store, settings)
    again = drain_outbox(store, settings)

    assert report.sent == 2 and report.cursor == 0
    assert again.sent == 0 and len(server.sent_messages()) == 2
    later = asyncio.run(
        drain_with_bot(store, settings, clock=lambda: utcnow() + timedelta(seconds=31))
    )
    assert later.cursor == second.seq


def test_a_run_is_bounded_but_held_events_do_not_use_up_the_budget(
    server: FakeTelegramServer, store: SQLiteStore
) -> None:
    settings = make_settings(
        server,
        max_events_per_run=2,
        batch_size=2,
        quiet_hours_start=time(22, 0),
        quiet_hours_end=time(7, 0),
    )
    night = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    held = [fill_event(n).model_copy(update={"created_at": night}) for n in range(1, 6)]
    stops = [alert(n).model_copy(update={"created_at": night}) for n in range(1, 4)]
    stored = store.append_events([*held, *stops])

    at_night = asyncio.run(drain_with_bot(store, settings, clock=lambda: night))
    assert at_night.held == 5 and at_night.sent == 2  # the budget: two alerts per run
    in_the_morning = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    runs = [asyncio.run(drain_with_bot(store, settings, clock=lambda: in_the_morning))]
    while runs[-1].sent:
        runs.append(asyncio.run(drain_with_bot(store, settings, clock=lambda: in_the_morning)))

    assert [r.sent for r in runs] == [2, 2, 2, 0]
    sent_refs = [m.text.split(" #")[1].split(" ")[0] for m in server.sent_messages()]
    assert sorted(sent_refs, key=int) == [str(e.seq) for e in stored]
    assert runs[-1].cursor == stored[-1].seq
