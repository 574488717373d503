"""Outbox delivery: every stored event is a notification candidate, sent once.

The store's events table IS the outbox (the rest of Kestrel writes an event in the same
transaction as the state change it reports). This module only adds delivery bookkeeping, in
state documents, all compare-and-set:

- `delivery:<event_id>` records one event's delivery (`Delivery`): claimed -> sending ->
  sent, or skipped (filtered, too old), failed (Telegram refused this message for good), or
  pending (released after transient failures, retried by a later run).
- `notify_cursor` is the highest seq below which every event is settled; it only bounds the
  scan and only moves forward.

Exactly once, and where the Bot API makes it impossible:
- A claim is a CAS create (or a CAS take-over of an expired lease): of two drains, one wins;
  the loser moves on. Before each HTTP attempt the owner CAS-writes `sending` with a fresh
  lease longer than connect+write+read timeouts, so nobody else can act while a request may
  be in flight; after the answer it CAS-records `sent` with the message_id.
- 429 (RetryAfter), Telegram's error answers (5xx) and failures to connect are *definite*:
  nothing was sent, so retrying cannot duplicate. 429 waits retry_after (within
  max_retry_after_s, else the run stops and resumes later); the others back off.
- A read timeout or a connection dropped after the request was written, and a crash between
  sending and recording (found later as an expired `sending` lease) are *unknown* outcomes:
  sendMessage has no idempotency key, and a bot cannot read its chat history to check.
  Kestrel then resends, marked "possible repeat of an earlier message with the same #": an
  order notification must not be lost, and a marked repeat that carries the same `#<seq>` is
  recognisable to a human. Duplicates are therefore possible only in that window (a send
  whose answer was lost), never from 429/5xx/connect failures, retries or concurrent drains.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from telegram import Bot
from telegram.error import RetryAfter, TelegramError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from kestrel.errors import ConcurrentUpdate, DeliveryBlocked, TelegramUnavailable
from kestrel.models import Event, utcnow
from kestrel.notify.client import (
    Failure,
    Sleep,
    TelegramBackoff,
    classify,
    make_bot,
    retry_after_seconds,
)
from kestrel.notify.redact import safe_error
from kestrel.notify.render import format_card
from kestrel.notify.settings import TelegramSettings
from kestrel.notify.templates import render_event
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state

log = logging.getLogger(__name__)

CURSOR_KEY = "notify_cursor"
DELIVERY_PREFIX = "delivery:"


class DeliveryStatus(StrEnum):
    CLAIMED = "claimed"  # an owner holds the lease; no request of this claim is in flight
    SENDING = "sending"  # a request may be in flight: outcome unknown if the lease lapses
    PENDING = "pending"  # released after definite failures; retry after not_before
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


SETTLED = frozenset({DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED})


class Delivery(BaseModel):
    """One event's delivery record (state document `delivery:<event_id>`)."""

    event_id: str
    seq: int
    status: DeliveryStatus
    owner: str = ""
    nonce: str = ""
    lease_until: datetime | None = None
    not_before: datetime | None = None
    attempts: int = 0
    possible_repeat: bool = False
    plain_text: bool = False
    chat_id: int | None = None
    message_id: int | None = None
    sent_at: datetime | None = None
    note: str = ""


class Outcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    SETTLED = "settled"  # found already settled
    HELD = "held"  # quiet hours
    BUSY = "busy"  # another drain holds it
    DEFERRED = "deferred"  # pending, not due yet / released after transient failures


@dataclass
class DrainReport:
    sent: int = 0
    repeats: int = 0
    skipped: int = 0
    failed: int = 0
    held: int = 0
    busy: int = 0
    deferred: int = 0
    cursor: int = 0
    stopped: str | None = None
    transient: bool = True

    def raise_for_stop(self) -> None:
        """Turn an early stop into the exception a scheduler should see (scrubbed)."""
        if self.stopped is None:
            return
        if self.transient:
            raise TelegramUnavailable(self.stopped)
        raise DeliveryBlocked(self.stopped)


@dataclass
class _Claim:
    """The delivery record this run holds and its store version, kept current as it is
    rewritten; `amend` changes it in memory only, to be written with the next write."""

    record: Delivery
    version: int

    def amend(self, **changes: Any) -> None:
        self.record = self.record.model_copy(update=changes)


class _LostClaim(Exception):
    """Our CAS on a delivery record failed: another drain took the (expired) claim."""


class _Stop(Exception):
    """End the run here. kind: 'busy' (another run is ahead of us: let it keep the order),
    'transient' (Telegram backs us off) or 'blocked' (configuration)."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def delivery_key(event_id: str) -> str:
    return DELIVERY_PREFIX + event_id


def get_delivery(store: Store, event_id: str) -> Delivery | None:
    found = store.get_state(delivery_key(event_id))
    return Delivery.model_validate(found[0]) if found else None


def notify_cursor(store: Store) -> int:
    found = store.get_state(CURSOR_KEY)
    return int(found[0].get("seq", 0)) if found else 0


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Outbox:
    """Drains one store's events to one chat. `clock` and `sleep` are injectable so tests
    can stand after a lease expiry or skip a backoff without waiting in real time."""

    def __init__(
        self,
        store: Store,
        settings: TelegramSettings,
        bot: Bot,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if settings.notify_chat_id is None:
            raise ValueError("TelegramSettings.notify_chat_id is not set: nowhere to send")
        self.store, self.settings, self.bot = store, settings, bot
        self.chat_id: int = settings.notify_chat_id
        self.owner = owner or default_owner()
        self.clock, self.sleep = clock, sleep

    # -- the run --------------------------------------------------------------------------------
    async def drain(self) -> DrainReport:
        """Deliver what is due, oldest first. Only events acted on (sent, skipped, failed)
        count toward max_events_per_run: a night of held events must not hide an emergency
        stop behind them."""
        report = DrainReport(cursor=notify_cursor(self.store))
        after, settled_upto, contiguous, acted = report.cursor, report.cursor, True, 0
        try:
            while acted < self.settings.max_events_per_run:
                batch = self.store.list_events(after_seq=after, limit=self.settings.batch_size)
                if not batch:
                    break
                for event in batch:
                    after = event.seq or after
                    outcome = await self._handle(event, report)
                    if outcome is Outcome.BUSY:
                        # Another run is ahead of us; overtaking it would reorder messages.
                        raise _Stop(f"event #{event.seq} is handled by another run", "busy")
                    if contiguous and self._may_pass(event, outcome):
                        settled_upto = after
                    else:
                        contiguous = False
                    if outcome in (Outcome.SENT, Outcome.SKIPPED, Outcome.FAILED):
                        acted += 1
                        if acted >= self.settings.max_events_per_run:
                            break
        except _Stop as stop:
            if stop.kind == "busy":
                log.info("notification run ends: %s", stop.reason)
            else:
                report.stopped, report.transient = stop.reason, stop.kind == "transient"
                log.warning("notification run stopped early: %s", stop.reason)
        report.cursor = self._advance_cursor(settled_upto)
        return report

    def _may_pass(self, event: Event, outcome: Outcome) -> bool:
        if outcome not in (Outcome.SENT, Outcome.SKIPPED, Outcome.FAILED, Outcome.SETTLED):
            return False
        # Never step past very young events: a backend whose seq is assigned before commit
        # could still make a lower seq visible later.
        return event.created_at <= self.clock() - timedelta(seconds=self.settings.cursor_grace_s)

    def _advance_cursor(self, seq: int) -> int:
        def forward(doc: dict[str, Any] | None) -> StateChange[int]:
            current = int(doc.get("seq", 0)) if doc else 0
            if seq <= current:
                return StateChange(result=current)
            new = {"seq": seq, "updated_at": self.clock().isoformat(), "by": self.owner}
            return StateChange(result=seq, value=new)

        try:
            return update_state(self.store, CURSOR_KEY, forward, what="the notify cursor")
        except ConcurrentUpdate:  # other drainers keep moving it: theirs is as good
            return notify_cursor(self.store)

    # -- one event ------------------------------------------------------------------------------
    async def _handle(self, event: Event, report: DrainReport) -> Outcome:
        found = self.store.get_state(delivery_key(event.event_id))
        current = Delivery.model_validate(found[0]) if found else None
        if current is not None and current.status in SETTLED:
            return Outcome.SETTLED
        now = self.clock()
        skip_reason = self._skip_reason(event, now)
        if skip_reason is not None:
            return self._skip(event, found, skip_reason, report)
        if self._held(event, now):
            report.held += 1
            return Outcome.HELD
        claim = self._claim(event, found, now)
        if claim is None:
            if current is not None and current.status is DeliveryStatus.PENDING:
                # Telegram asked us to back off; sending later events first would reorder.
                report.deferred += 1
                raise _Stop(f"event #{event.seq} waits until {current.not_before}", "transient")
            report.busy += 1
            return Outcome.BUSY
        try:
            outcome = await self._deliver(event, *claim)
        except _LostClaim:
            report.busy += 1
            return Outcome.BUSY
        if outcome is Outcome.SENT:
            report.sent += 1
            delivered = get_delivery(self.store, event.event_id)
            if delivered is not None and delivered.possible_repeat:
                report.repeats += 1
        elif outcome is Outcome.FAILED:
            report.failed += 1
        elif outcome is Outcome.DEFERRED:
            report.deferred += 1
        return outcome

    def _skip_reason(self, event: Event, now: datetime) -> str | None:
        if not self.settings.wants(event.type):
            return "filtered by settings"
        max_age = self.settings.max_event_age_h
        if max_age is not None and now - event.created_at > timedelta(hours=max_age):
            return f"older than {max_age}h when first due"
        return None

    def _held(self, event: Event, now: datetime) -> bool:
        return (
            self.settings.in_quiet_hours(now) and event.type not in self.settings.quiet_hours_bypass
        )

    def _skip(
        self,
        event: Event,
        found: tuple[dict[str, Any], int] | None,
        reason: str,
        report: DrainReport,
    ) -> Outcome:
        record = Delivery(
            event_id=event.event_id,
            seq=event.seq or 0,
            status=DeliveryStatus.SKIPPED,
            owner=self.owner,
            note=reason,
        )
        if found is not None:
            previous = Delivery.model_validate(found[0])
            lease = previous.lease_until
            if previous.status is not DeliveryStatus.PENDING and lease and lease > self.clock():
                report.busy += 1
                return Outcome.BUSY  # someone is sending it right now: let them finish
            record.attempts = previous.attempts
        try:
            self.store.put_state(
                delivery_key(event.event_id),
                record.model_dump(mode="json"),
                expected_version=found[1] if found else 0,
            )
        except ConcurrentUpdate:
            report.busy += 1
            return Outcome.BUSY
        report.skipped += 1
        return Outcome.SKIPPED

    def _claim(
        self, event: Event, found: tuple[dict[str, Any], int] | None, now: datetime
    ) -> tuple[Delivery, int] | None:
        """CAS-claim the event, or None if someone else holds it or it is not due yet."""
        lease = now + timedelta(seconds=self.settings.lease_s)
        nonce = uuid.uuid4().hex[:12]
        if found is None:
            record = Delivery(
                event_id=event.event_id,
                seq=event.seq or 0,
                status=DeliveryStatus.CLAIMED,
                owner=self.owner,
                nonce=nonce,
                lease_until=lease,
            )
            version = 0
        else:
            previous, version = Delivery.model_validate(found[0]), found[1]
            if previous.status is DeliveryStatus.PENDING:
                if previous.not_before is not None and previous.not_before > now:
                    return None
            elif previous.lease_until is not None and previous.lease_until > now:
                return None
            crashed_mid_send = previous.status is DeliveryStatus.SENDING
            if crashed_mid_send:
                log.warning(
                    "event %s: the previous sender (%s) vanished mid-send; its message may or "
                    "may not have arrived, resending marked as a possible repeat",
                    event.event_id,
                    previous.owner,
                )
            record = previous.model_copy(
                update={
                    "status": DeliveryStatus.CLAIMED,
                    "owner": self.owner,
                    "nonce": nonce,
                    "lease_until": lease,
                    "possible_repeat": previous.possible_repeat or crashed_mid_send,
                }
            )
        try:
            new_version = self.store.put_state(
                delivery_key(event.event_id),
                record.model_dump(mode="json"),
                expected_version=version,
            )
        except ConcurrentUpdate:
            return None
        return record, new_version

    def _write(self, record: Delivery, version: int, **changes: Any) -> tuple[Delivery, int]:
        updated = record.model_copy(update=changes)
        try:
            new_version = self.store.put_state(
                delivery_key(record.event_id),
                updated.model_dump(mode="json"),
                expected_version=version,
            )
        except ConcurrentUpdate:
            raise _LostClaim(record.event_id) from None
        return updated, new_version

    def _lease(self, extra_s: float = 0.0) -> datetime:
        return self.clock() + timedelta(seconds=self.settings.lease_s + extra_s)

    async def _deliver(self, event: Event, record: Delivery, version: int) -> Outcome:
        """Send under our claim, retrying definite failures within this run's budget
        (tenacity: how long to wait is TelegramBackoff's, a 429's retry_after included).
        Before each wait the claim is renewed for as long as the wait; when the budget is
        spent the event is released, due again after one more wait, and the run stops so
        that no later event overtakes it."""
        claim = _Claim(record, version)
        backoff = TelegramBackoff(self.settings.retry_backoff_s)

        def hold(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            self._update(claim, status=DeliveryStatus.CLAIMED, lease_until=self._lease(wait))

        def give_up(state: RetryCallState) -> Outcome:
            due = self.clock() + timedelta(seconds=backoff(state))
            self._update(claim, status=DeliveryStatus.PENDING, lease_until=None, not_before=due)
            raise _Stop(f"event #{event.seq}: {claim.record.note}", "transient")

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.send_attempts_per_run),
            wait=backoff,
            retry=retry_if_exception_type(TelegramError),
            before_sleep=hold,
            retry_error_callback=give_up,
            sleep=self.sleep,
        )
        outcome: Outcome = await retrying(self._attempt, event, claim)
        return outcome

    async def _attempt(self, event: Event, claim: _Claim) -> Outcome:
        """One sendMessage, marked `sending` under a fresh lease first. A failure worth
        another attempt is re-raised (after noting what it tells us); others end here."""
        self._update(
            claim,
            status=DeliveryStatus.SENDING,
            attempts=claim.record.attempts + 1,
            lease_until=self._lease(),
        )
        parse_mode = None if claim.record.plain_text else self.settings.parse_mode
        card = render_event(
            event,
            possible_repeat=claim.record.possible_repeat,
            held=self._held(event, event.created_at),
        )
        try:
            message = await self.bot.send_message(
                chat_id=self.chat_id, text=format_card(card, parse_mode), parse_mode=parse_mode
            )
        except TelegramError as exc:
            if self._after_failure(event, claim, exc) is Outcome.FAILED:
                return Outcome.FAILED
            raise
        try:
            self._update(
                claim,
                status=DeliveryStatus.SENT,
                chat_id=message.chat_id,
                message_id=message.message_id,
                sent_at=self.clock(),
                lease_until=None,
                note="",
            )
        except _LostClaim:
            log.error(
                "event %s was sent (message %s) but another drain took the claim first; "
                "it will resend it marked as a possible repeat (lease_s too short?)",
                event.event_id,
                message.message_id,
            )
            raise
        return Outcome.SENT

    def _after_failure(self, event: Event, claim: _Claim, exc: TelegramError) -> Outcome | None:
        """FAILED when Telegram refused this message for good; None when another attempt
        may follow (what it must know is noted on the claim, written before the wait);
        _Stop when the run must end here."""
        failure = classify(exc)
        note = safe_error(exc)
        attempt = claim.record.attempts
        log.info("event %s attempt %d: %s (%s)", event.event_id, attempt, note, failure)
        if failure is Failure.REFUSED:
            self._update(claim, status=DeliveryStatus.FAILED, lease_until=None, note=note)
            return Outcome.FAILED
        if failure in (Failure.BAD_TOKEN, Failure.CHAT_UNAVAILABLE):
            self._release(claim, note, delay_s=0.0)
            raise _Stop(note, "blocked")
        if failure is Failure.BAD_MARKUP:
            # Telegram refused the markup, so nothing was sent: resend as plain text at once.
            log.error("event %s: template markup refused by Telegram: %s", event.event_id, note)
            claim.amend(plain_text=True)
            return None
        if failure is Failure.RATE_LIMITED and isinstance(exc, RetryAfter):
            wait = retry_after_seconds(exc)
            if wait > self.settings.max_retry_after_s:
                self._release(claim, note, delay_s=wait)
                raise _Stop(f"rate limited for {wait:.0f}s: {note}", "transient")
            claim.amend(note=note)
            return None
        # NOT_SENT: definite; UNKNOWN: may have arrived, so the next attempt is marked.
        repeat = claim.record.possible_repeat or failure is Failure.UNKNOWN
        claim.amend(note=note, possible_repeat=repeat)
        return None

    def _update(self, claim: _Claim, **changes: Any) -> None:
        claim.record, claim.version = self._write(claim.record, claim.version, **changes)

    def _release(self, claim: _Claim, note: str, *, delay_s: float) -> None:
        self._update(
            claim,
            status=DeliveryStatus.PENDING,
            lease_until=None,
            not_before=self.clock() + timedelta(seconds=delay_s),
            note=note,
        )


async def drain_with_bot(
    store: Store,
    settings: TelegramSettings,
    *,
    token: str | None = None,
    owner: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> DrainReport:
    """One drain run with its own PTB Bot (initialised with getMe, shut down after)."""
    bot = make_bot(settings, token)
    try:
        async with bot:
            outbox = Outbox(store, settings, bot, owner=owner, clock=clock, sleep=sleep)
            return await outbox.drain()
    except TelegramError as exc:  # getMe at start-up or the shutdown; never the sends
        if classify(exc) in (Failure.BAD_TOKEN, Failure.CHAT_UNAVAILABLE):
            raise DeliveryBlocked(safe_error(exc)) from None
        raise TelegramUnavailable(safe_error(exc)) from None


def drain_outbox(
    store: Store, settings: TelegramSettings, *, token: str | None = None
) -> DrainReport:
    """Synchronous entry point for tasks and the CLI (runs its own event loop)."""
    return asyncio.run(drain_with_bot(store, settings, token=token))
