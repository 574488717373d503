"""Skipping passes while nothing is open changes nothing: the fast path and a plain
step-by-step run give the same orders, fills and balances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kestrel.backtest import BacktestRun, backtest_store, execute, prepare
from tests.backtest.helpers import btc_settings, sine_folder, spec


def books(run: BacktestRun) -> dict[str, Any]:
    store = run.runtime.store
    account = store.get_state("paper_account")
    assert account is not None
    return {
        "orders": [
            o.model_dump(exclude={"updated_at", "version", "last_sent_at"})
            for o in store.list_orders()
        ],
        "fills": [f.model_dump() for f in store.list_fills()],
        "positions": [
            p.model_dump(exclude={"updated_at", "version"}) for p in store.list_positions()
        ],
        "balances": account[0]["balances"],
        "equity": [(p.timestamp, p.equity) for p in run.equity],
    }


def test_fast_and_step_by_step_runs_are_identical(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path)
    settings = btc_settings(tmp_path / "data")
    outcomes = {}
    for fast in (True, False):
        with backtest_store() as store:
            run = execute(prepare(settings, spec(folder, fast=fast), store))
            outcomes[fast] = (books(run), dict(run.skipped))
    (fast_books, fast_skips), (slow_books, slow_skips) = outcomes[True], outcomes[False]
    assert fast_skips["sync"] > 0 and fast_skips["monitor"] > 0  # the fast path did skip
    assert slow_skips == {"sync": 0, "monitor": 0}
    assert len(fast_books["fills"]) >= 4
    assert fast_books == slow_books
