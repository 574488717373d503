"""Fixtures for the live engine: a SQLite store, the emulator over the scripted feed, and a
hand-moved clock (no test here waits on wall time)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from emulator import BinanceEmulator
from kestrel.live import Levels
from kestrel.live.engine import ClosedCandle
from kestrel.mode import TradingMode
from kestrel.store import SQLiteStore, Store
from tests.emulator.scripted import account, scripted_market


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "kestrel_real.sqlite3", TradingMode.REAL)
    yield s
    s.close()


@pytest.fixture
def emu() -> Iterator[BinanceEmulator]:
    e = BinanceEmulator([scripted_market()], accounts=[account(btc="2")]).start()
    yield e
    errors = e.internal_errors
    e.stop()
    assert errors == []


@dataclass
class ManualClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass
class Recorder:
    """The engine's hooks as plain functions that record what they were asked to run (the
    flow layer passes Prefect subflows here)."""

    cycles: list[tuple[str, str, int]] = field(default_factory=list)
    batches: list[list[ClosedCandle]] = field(default_factory=list)  # one per cycle run
    syncs: list[str] = field(default_factory=list)
    monitors: list[str] = field(default_factory=list)
    current: list[Levels] = field(default_factory=list)

    def run_cycle(self, closed: Sequence[ClosedCandle]) -> None:
        self.batches.append(list(closed))
        self.cycles += [(c.symbol, c.timeframe, c.open_time) for c in closed]

    def run_sync(self, reason: str) -> None:
        self.syncs.append(reason)

    def run_monitor(self, reason: str) -> None:
        self.monitors.append(reason)

    def levels(self) -> list[Levels]:
        return list(self.current)


@pytest.fixture
def hooks() -> Recorder:
    return Recorder()


def stop_at(symbol: str, stop: str, native: str | None = None) -> Levels:
    return Levels(
        position_id="p1",
        symbol=symbol,
        stop_loss=Decimal(stop),
        take_profit=Decimal("150"),
        native_stop=Decimal(native) if native else None,
    )
