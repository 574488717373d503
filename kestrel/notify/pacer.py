"""When a long-lived process (the live engine) drains the outbox: at once when new events
exist, and otherwise at most every `retry_s` while some are still pending (held by quiet
hours, deferred after a Telegram failure), so an idle engine does not start a drain every
few seconds for messages that are not due.

The check is one indexed read of the event log (events after the newest one seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kestrel.notify.outbox import notify_cursor
from kestrel.store.base import Store

__all__ = ["DrainPacer"]


class DrainPacer:
    def __init__(
        self, store: Store, retry_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.retry_s = retry_s
        self.clock = clock
        self.seen = notify_cursor(store)  # the newest event seq known
        self.last_drain: float | None = None

    def due(self) -> str | None:
        """Why a drain should run now, or None."""
        newer = self.store.list_events(after_seq=self.seen, limit=500)
        if newer:
            self.seen = max(e.seq or self.seen for e in newer)
            return f"{len(newer)} new event(s)"
        if notify_cursor(self.store) >= self.seen:
            return None  # everything seen is settled
        now = self.clock()
        if self.last_drain is None or now - self.last_drain >= self.retry_s:
            return "events still pending"
        return None

    def drained(self) -> None:
        self.last_drain = self.clock()
