"""Market-feed fixtures: a real SQLite store and small hand-written candle files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14T22:00:00Z, on an hour boundary


@pytest.fixture
def store(tmp_data_dir: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_data_dir / "demo.sqlite", TradingMode.DEMO)
    yield opened
    opened.close()


def write_csv(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    lines = ["timestamp,open,high,low,close,volume"] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def ramp(
    count: int, *, start: int = T0, step: int = HOUR, price: float = 100.0
) -> list[list[object]]:
    """`count` well-formed candles whose close rises by 1 each step."""
    rows: list[list[object]] = []
    for i in range(count):
        o = price + i
        rows.append([start + i * step, o, o + 2, o - 1, o + 1, 10 + i])
    return rows
