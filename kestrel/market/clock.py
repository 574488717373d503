"""Replay and simulation cursors, persisted in the Store so every process sees the same time.

Under Prefect each flow run is its own process and builds its own feed; a cursor held in
memory would restart every run at the first candle. So the cursor is a small CAS document
(state key "market_clock"): {kind: {symbol: {"source": <data id>, "visible": <n candles>}}}.
`source` names the data (file, seed): pointing a symbol at other data restarts its cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

STATE_KEY = "market_clock"
_CAS_ATTEMPTS = 50


@dataclass(frozen=True)
class Cursor:
    """What a feed knows about one symbol's data: its identity, warm-up and length."""

    source: str
    start: int  # candles visible before the first advance (the warm-up)
    length: int | None  # candles available; None = unbounded (simulation)

    def clamp(self, visible: int) -> int:
        visible = max(visible, self.start)
        return visible if self.length is None else min(visible, self.length)


class MarketClock:
    def __init__(self, store: Store, kind: str) -> None:
        self._store = store
        self._kind = kind

    def _section(self) -> tuple[dict[str, Any], dict[str, Any], int]:
        found = self._store.get_state(STATE_KEY)
        doc, version = found if found is not None else ({}, 0)
        return doc, dict(doc.get(self._kind) or {}), version

    @staticmethod
    def _visible(entry: Any, cursor: Cursor) -> int:
        if not isinstance(entry, dict) or entry.get("source") != cursor.source:
            return cursor.clamp(cursor.start)
        return cursor.clamp(int(entry.get("visible", cursor.start)))

    def visible(self, symbol: str, cursor: Cursor) -> int:
        """How many of the symbol's candles are visible (closed) now."""
        _, section, _ = self._section()
        return self._visible(section.get(symbol), cursor)

    def advance(self, cursors: Mapping[str, Cursor], steps: int) -> None:
        """Move every cursor `steps` candles forward (stopping at the end of its data)."""
        if steps < 0:
            raise ValueError("a market clock only moves forward; use reset() to restart")
        self._update(
            cursors, lambda entry, cursor: cursor.clamp(self._visible(entry, cursor) + steps)
        )

    def reset(self, cursors: Mapping[str, Cursor]) -> None:
        """Back to the warm-up position (a fresh replay)."""
        self._update(cursors, lambda entry, cursor: cursor.start)

    def _update(self, cursors: Mapping[str, Cursor], move: Callable[[Any, Cursor], int]) -> None:
        def attempt() -> None:
            doc, section, version = self._section()
            for symbol, cursor in cursors.items():
                section[symbol] = {
                    "source": cursor.source,
                    "visible": move(section.get(symbol), cursor),
                }
            self._store.put_state(STATE_KEY, {**doc, self._kind: section}, expected_version=version)

        retry_on_conflict(attempt, what=STATE_KEY, attempts=_CAS_ATTEMPTS)
