"""Two trading cycles at once, in two OS processes, on one REAL store, against the emulator
through the real ccxt client, with 0-1.5 s of latency on every order POST (what made the race
likely in issue 12: a duplicate exchange order, an orphan and a missing fill in 2 of 3 trials).

Both processes decide to buy the same candle at the same moment. The symbol's lease in the
store lets one of them read-decide-place at a time; the other then sees the order (or its
position) and does not buy again, or stands down naming the holder. Whatever the
interleaving, every trial ends with exactly one exchange order, linked to its store order,
with every exchange trade recorded as a fill. The latency only makes the race likely; the
assertions do not depend on it."""

from __future__ import annotations

import math
import multiprocessing
import queue
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from emulator import BinanceEmulator, MarketConfig
from kestrel.mode import TradingMode
from kestrel.models import OrderRole
from kestrel.store.router import sqlite_path
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle import cycle_worker
from tests.lifecycle.scenario import HOUR, KEY, SECRET, SYMBOL, account

TRIALS = 3  # most of the time is the two processes importing ccxt (no .pyc here)
WORKERS = ("A", "B")
HISTORY = 120  # closed candles: enough for every indicator of the default profile


def recent_market() -> MarketConfig:
    """Hourly candles whose last closed one ended at the top of this hour (REAL mode judges
    staleness by the wall clock), gently oscillating around 100."""
    now = int(time.time() * 1000)
    first = now - now % HOUR - HISTORY * HOUR
    rows = []
    for i in range(HISTORY + 10):
        price = Decimal(100) + Decimal(round(2 * math.sin(i / 5), 2))
        rows.append([first + i * HOUR, str(price), str(price + 1), str(price - 1), str(price), 10])
    return MarketConfig(
        symbol=SYMBOL,
        candles=rows,
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_notional=Decimal("5"),
    )


class Cycles:
    """Two cycle processes, started once (each pays ccxt's import once) and given one job per
    trial; each job's cycle waits at a shared barrier for the other's."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(len(WORKERS))  # kept: the children attach to it at start
        self.results: Queue[object] = ctx.Queue()
        self.jobs: dict[str, Queue[object]] = {name: ctx.Queue() for name in WORKERS}
        self.processes = [
            ctx.Process(
                target=cycle_worker.serve,
                args=(name, self.jobs[name], self.barrier, self.results),
                daemon=True,
            )
            for name in WORKERS
        ]
        for process in self.processes:
            process.start()

    def race(self, url: str, data_dir: Path) -> dict[str, list[str]]:
        """Both cycles on this emulator and store; each one's decision (action, reasons)."""
        for jobs in self.jobs.values():
            jobs.put((url, data_dir))
        outcomes = [self._next_result() for _ in WORKERS]
        errors = [f"{name}: {detail}" for name, status, detail in outcomes if status == "error"]  # type: ignore[misc]
        assert not errors, "\n".join(errors)
        return {name: detail for name, _, detail in outcomes}  # type: ignore[misc]

    def _next_result(self) -> tuple[str, str, object]:
        while True:
            try:
                return self.results.get(timeout=1)  # type: ignore[return-value]
            except queue.Empty:
                dead = [p.exitcode for p in self.processes if not p.is_alive()]
                assert not dead, f"a cycle process died (exit codes {dead}); see its stderr"

    def stop(self) -> None:
        for jobs in self.jobs.values():
            jobs.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


@pytest.fixture
def cycles(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cycles]:
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)  # inherited by the spawned cycles
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    started = Cycles()
    yield started
    started.stop()


def assert_books_match_the_exchange(emu: BinanceEmulator, store: SQLiteStore) -> None:
    with emu.engine.lock:
        remote = list(emu.engine.orders.values())
        trades = list(emu.engine.trades)
    cids = [o.client_order_id for o in remote]
    assert len(remote) == 1, f"duplicate exchange orders: {cids}"
    [exchange_order] = remote
    mine = store.get_order(exchange_order.client_order_id)
    assert mine is not None, f"orphan: exchange order {exchange_order.order_id} not in the store"
    assert mine.exchange_order_id == str(exchange_order.order_id), "store linked another order"
    assert mine.filled == exchange_order.executed_qty > 0
    recorded = {f.trade_id for f in store.list_fills()}
    assert {str(t.trade_id) for t in trades} == recorded, "missing (or extra) fills"
    assert [o.client_order_id for o in store.list_orders(roles=[OrderRole.PRIMARY])] == cids


@pytest.mark.timeout(300)
def test_two_cycles_at_once_place_one_order_and_book_it(cycles: Cycles, tmp_path: Path) -> None:
    for trial in range(TRIALS):
        emu = BinanceEmulator([recent_market()], [account()], start_index=HISTORY).start()
        try:
            latency = random.Random(trial)  # seeded: the same latencies on every run
            for _ in range(4):
                emu.faults.latency(latency.uniform(0, 1.5), path="/api/v3/order", method="POST")
            data_dir = tmp_path / f"trial{trial}"
            data_dir.mkdir()
            decisions = cycles.race(emu.url, data_dir)
            store = SQLiteStore(sqlite_path(data_dir, TradingMode.REAL), TradingMode.REAL)
            try:
                assert_books_match_the_exchange(emu, store)
            finally:
                store.close()
            print(f"trial {trial}: {decisions}")
            assert [d[0] for d in decisions.values()].count("BUY") >= 1, decisions
            assert emu.internal_errors == []
        finally:
            emu.stop()
