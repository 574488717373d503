"""Recorded analyst answers (kestrel.analysis.recordings) kept in a Store: one state document
`recording:<sha256 of the input>` per answer. Writing is best effort: an answer already there
stays (same input, same question), and any failure is logged, never raised, so recording can
never fail a live analysis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kestrel.errors import ConcurrentUpdate
from kestrel.store.base import Store

__all__ = ["PREFIX", "StoreRecordings"]

log = logging.getLogger(__name__)

PREFIX = "recording:"


class StoreRecordings:
    """Recordings as state documents of a Store (the live run's own database)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> dict[str, Any] | None:
        found = self.store.get_state(PREFIX + key)
        return None if found is None else found[0]

    def put(self, key: str, answer: dict[str, Any]) -> None:
        """Best effort: an answer already recorded stays; any failure is only logged."""
        try:
            self.store.put_state(PREFIX + key, answer, expected_version=0)
        except ConcurrentUpdate:
            pass  # this exact question was answered and recorded before
        except Exception as exc:  # a recording must never fail the analysis
            log.warning("could not record analyst answer %s: %s: %s", key, type(exc).__name__, exc)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, value, _ in self.store.list_state(PREFIX):
            yield key.removeprefix(PREFIX), value
