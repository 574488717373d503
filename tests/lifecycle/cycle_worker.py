"""A trading cycle in a process of its own, for test_two_cycles (spawned, so importable).

It runs the cycle's steps as the trading-cycle flow does: fetch and analyse outside the
lease; then, holding the symbol's lease, risk -> decide -> execute, the order step retried on
transient exchange errors as the flow's execute task is (tasks/retry.py). The analysis is the
real one on the emulator's candles with its signal set to BUY, so that both processes want to
buy the same candle: the race under test."""

from __future__ import annotations

import time
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from kestrel.exchange.errors import is_transient
from kestrel.execution.lease import LeaseBusy, symbol_lease
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Action, Decision, Order, Signal
from kestrel.runtime import Runtime, build_runtime
from kestrel.strategy.resolve import resolve_plan
from kestrel.trading import cycle
from tests.lifecycle.scenario import SYMBOL, real_settings

EXECUTE_TRIES = 5  # the execute task's 1 + 4 retries
LEASE_WAIT_S = 60.0


def execute(rt: Runtime, decision: Decision) -> Order | None:
    for attempt in range(EXECUTE_TRIES):
        try:
            return cycle.execute(rt, decision)
        except Exception as exc:
            if not is_transient(exc) or attempt == EXECUTE_TRIES - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    return None


def trading_cycle(url: str, data_dir: Path, name: str, barrier: Barrier) -> Decision:
    settings = real_settings(url, data_dir, access={"timeout_s": 10.0})
    with trading_mode(TradingMode.REAL):
        rt = build_runtime(settings)
        try:
            plan = resolve_plan(settings, settings.watch(SYMBOL))
            analysis = cycle.analyze_candles(cycle.fetch_candles(rt, plan.item), plan.profile)
            buy = Signal(action=Action.BUY, confidence=0.9, reasoning="test: both want to buy")
            analysis = analysis.model_copy(update={"signal": buy})
            barrier.wait(timeout=120)  # both reach the read-decide-place section together
            try:
                run = f"test cycle {name}"
                with symbol_lease(rt.store, rt.exchange.id, SYMBOL, run, wait_s=LEASE_WAIT_S):
                    verdict = cycle.assess_risk(rt, plan, analysis)
                    decision = cycle.make_decision(rt, plan, analysis, verdict)
                    execute(rt, decision)
                    return decision
            except LeaseBusy as busy:
                return cycle.stand_down(rt, plan, analysis, busy)
        finally:
            rt.store.close()


def serve(name: str, jobs: Queue[object], barrier: Barrier, results: Queue[object]) -> None:
    """Run one cycle per job (an emulator url and a data dir) until None: one process for all
    trials, because starting one costs seconds (ccxt's import) and a race needs none of it."""
    while (job := jobs.get()) is not None:
        url, data_dir = job  # type: ignore[misc]
        try:
            decision = trading_cycle(url, data_dir, name, barrier)
            codes = [decision.action.value, *(r.code.value for r in decision.reasons)]
            results.put((name, "ok", codes))
        except BaseException:
            results.put((name, "error", traceback.format_exc()))
