"""No two cycles of one watchlist overlap: while one run holds the watchlist's global
concurrency limit, another stands down (Cancelled) without touching the exchange or the
store, whichever deployment or process it comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.entrypoints import lock_name, trading_cycle, watchlist_lock
from kestrel.mode import TradingMode
from kestrel.settings import WatchlistItem, load_settings
from kestrel.store import open_store

pytestmark = pytest.mark.prefect


def test_lock_names() -> None:
    assert lock_name(TradingMode.REAL, "Majors & Alts") == "kestrel-cycle-real-majors-alts"
    assert lock_name(TradingMode.DEMO, "!!!") == "kestrel-cycle-demo-default"


def test_a_busy_watchlist_stands_down(prefect_api: str, tmp_path: Path) -> None:
    config = {
        "mode": "DEMO",
        "data_dir": str(tmp_path / "data"),
        "paper": {"market_data": "simulated"},
        "ops": {"cycle_lock_timeout_s": 1},
    }
    items = [WatchlistItem(symbol="BTC/USDT")]
    with watchlist_lock(lock_name(TradingMode.DEMO, "busy"), 5) as held:
        assert held
        state = trading_cycle(watchlist="busy", items=items, config=config, return_state=True)
    assert state.is_cancelled(), state
    assert "being traded by another run" in (state.message or "")
    store = open_store(load_settings(**config), TradingMode.DEMO)
    try:
        assert store.list_events() == []  # it never started the cycle
    finally:
        store.close()

    # Another watchlist is independent, and the lock is free again afterwards.
    other = trading_cycle(watchlist="free", items=items, config=config, return_state=True)
    assert other.is_completed(), other.message
    again = trading_cycle(watchlist="busy", items=items, config=config, return_state=True)
    assert again.is_completed(), again.message
