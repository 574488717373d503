"""`kestrel breaker status|reset` and `kestrel strategy` as a user runs them (a real process
on a fresh data dir), and what they leave in the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kestrel.mode import TradingMode
from kestrel.models import Event, EventType
from kestrel.risk.breaker import refresh_circuit_breaker
from kestrel.risk.controls import circuit_breaker_state
from kestrel.store.router import sqlite_path
from kestrel.store.sqlite import SQLiteStore
from kestrel.strategy.settings import GateSettings


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("KESTREL_", "PREFECT_"))
    }
    environment.update({"KESTREL_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_breaker_status_and_reset(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    store = SQLiteStore(sqlite_path(tmp_path / "data", TradingMode.DEMO), TradingMode.DEMO)
    try:
        store.append_events(
            [
                Event(event_id=f"o{n}:FAILED", type=EventType.ORDER_FAILED, mode=TradingMode.DEMO)
                for n in range(3)
            ]
        )
        refresh_circuit_breaker(store, GateSettings())
    finally:
        store.close()
    status = run(["breaker", "status"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "TRIPPED: 3 consecutive failed orders" in status.stdout
    reset = run(["breaker", "reset", "--reason", "exchange fixed"], tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert "circuit breaker (DEMO): ok" in reset.stdout
    store = SQLiteStore(sqlite_path(tmp_path / "data", TradingMode.DEMO), TradingMode.DEMO)
    try:
        state, _ = circuit_breaker_state(store)
        assert not state.active and state.changed_by == "cli"
        (event,) = store.list_events(types=[EventType.CIRCUIT_BREAKER_RESET])
        assert "exchange fixed" in event.message
    finally:
        store.close()
    assert "ok" in run(["breaker", "status"], tmp_path).stdout


def test_strategy_lists_each_symbols_profile(tmp_path: Path) -> None:
    result = run(
        ["strategy"],
        tmp_path,
        KESTREL_WATCHLIST='[{"symbol": "BTC/USDT", "strategy": "scalp"}, {"symbol": "ETH/USDT"}]',
        KESTREL_TRADING__DEFAULT_STRATEGY="intraday/aggressive",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "analysis: SOLO [technical (x1)]"
    assert lines[1].startswith("BTC/USDT: SCALP/CONSERVATIVE from watchlist")
    assert lines[2].startswith("ETH/USDT: INTRADAY/AGGRESSIVE from default")
    bad = run(["strategy"], tmp_path, KESTREL_TRADING__DEFAULT_STRATEGY="moon")
    assert bad.returncode == 2 and "trading.default_strategy" in bad.stderr
