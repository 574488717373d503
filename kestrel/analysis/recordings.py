"""Recorded answers of analysts that call out (LLM, sentiment), so a backtest can replay them.

A live run stores each answer it got under `recording_key(analyst, model, payload)`: the
sha256 of the canonical JSON of the analyst's name, its model (or source) and the exact
payload it sent. A backtest that builds the same payload from the same candles finds the same
key and replays the answer without any connection (kestrel.backtest.analysts).

Live answers go to the mode's Store (kestrel.store.recordings: one small state document per
answer, first answer kept: the same input asked twice is the same question). Recording is a
side effect of the analysis and never fails it: a failed write is logged and forgotten.
Exported as JSON lines (`{"key": ..., "answer": {...}}` per line) for backtests elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from kestrel.errors import ConfigError

log = logging.getLogger(__name__)


def recording_key(analyst: str, model: str, payload: Any) -> str:
    """sha256 (hex) of the canonical JSON of what the analyst asked: same input, same key."""
    canonical = json.dumps(
        {"analyst": analyst, "model": model, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Recordings(Protocol):
    """Where answers are written (live) or read (backtest)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, answer: dict[str, Any]) -> None: ...


def record(recordings: Recordings | None, key: str, answer: dict[str, Any]) -> None:
    """Store an answer if recording is on; a failure is logged, never raised (the analysis
    that got the answer must not fail because its recording did)."""
    if recordings is None:
        return
    try:
        recordings.put(key, answer)
    except Exception as exc:
        log.warning("could not record analyst answer %s: %s: %s", key, type(exc).__name__, exc)


class MemoryRecordings:
    """Recordings held in memory (a backtest's loaded export, tests)."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.answers: dict[str, dict[str, Any]] = dict(answers or {})

    def get(self, key: str) -> dict[str, Any] | None:
        return self.answers.get(key)

    def put(self, key: str, answer: dict[str, Any]) -> None:
        self.answers.setdefault(key, answer)


def export_recordings(items: Iterable[tuple[str, dict[str, Any]]], path: Path) -> int:
    """Write JSON lines `{"key", "answer"}`; returns how many answers were written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for key, answer in items:
            out.write(json.dumps({"key": key, "answer": answer}, sort_keys=True) + "\n")
            count += 1
    return count


def load_recordings(path: Path) -> MemoryRecordings:
    """Read an export; a bad line is a ConfigError naming the file and the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"recordings file {path}: {exc.strerror or exc}") from None
    answers: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key, answer = row["key"], row["answer"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"recordings file {path} line {number}: expected "
                '{"key": "<sha256>", "answer": {...}} (as `kestrel backtest recordings '
                "export` writes)"
            ) from None
        if not isinstance(key, str) or not isinstance(answer, dict):
            raise ConfigError(
                f"recordings file {path} line {number}: key must be a string, answer an object"
            )
        answers.setdefault(key, answer)
    return MemoryRecordings(answers)
