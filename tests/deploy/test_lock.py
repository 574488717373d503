"""Two cycles of one watchlist: the Prefect watchlist lock normally puts them one after the
other, but correctness does not rest on it (`kestrel cycle`, manual orders and other servers
never take it). A run that cannot get it goes on, and each symbol's lease in the store
decides: a symbol another run is trading stands down with a decision naming that run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.trading_cycle import lock_name, trading_cycle, watchlist_lock
from kestrel.config.settings import WatchlistItem, load_settings
from kestrel.execution.lease import LeaseHolder, acquire, release, symbol_key
from kestrel.ids import installation_id
from kestrel.mode import TradingMode
from kestrel.models import Decision, EventType, ReasonCode
from kestrel.store import open_store

pytestmark = pytest.mark.prefect


def test_lock_names() -> None:
    assert lock_name(TradingMode.REAL, "Majors & Alts") == "kestrel-cycle-real-majors-alts"
    assert lock_name(TradingMode.DEMO, "!!!") == "kestrel-cycle-demo-default"


def test_a_busy_symbol_stands_down_naming_its_holder(prefect_api: str, tmp_path: Path) -> None:
    config = {
        "mode": "DEMO",
        "data_dir": str(tmp_path / "data"),
        "paper": {"market_data": "simulated"},
        "ops": {"cycle_lock_timeout_s": 1},
    }
    items = [WatchlistItem(symbol="BTC/USDT"), WatchlistItem(symbol="ETH/USDT")]
    store = open_store(load_settings(**config), TradingMode.DEMO)
    try:
        # Another server's run is trading BTC/USDT, and holds the watchlist's Prefect lock.
        holder = LeaseHolder.here(installation_id(store), "trading-cycle run brave-owl")
        holder = holder.model_copy(update={"host": "server-2", "process_space": "server-2/1"})
        lease = acquire(store, symbol_key("paper", "BTC/USDT"), holder, ttl_s=600)
        with watchlist_lock(lock_name(TradingMode.DEMO, "busy"), 5) as held:
            assert held
            decisions = trading_cycle(watchlist="busy", items=items, config=config)
        assert isinstance(decisions, list)
        by_symbol: dict[str, Decision] = {d.symbol: d for d in decisions}
        [busy] = by_symbol["BTC/USDT"].reasons
        assert busy.code is ReasonCode.SKIP_SYMBOL_BUSY
        assert "being traded by trading-cycle run brave-owl" in busy.detail
        assert "on server-2" in busy.detail
        assert all(r.code is not ReasonCode.SKIP_SYMBOL_BUSY for r in by_symbol["ETH/USDT"].reasons)
        [held_event] = store.list_events(types=[EventType.TRADE_HELD], symbol="BTC/USDT")
        assert held_event.reasons == ["SKIP_SYMBOL_BUSY"]

        # Free again: the next run trades BTC/USDT as usual.
        release(store, lease)
        again = trading_cycle(watchlist="busy", items=items, config=config)
        assert isinstance(again, list)
        assert all(r.code is not ReasonCode.SKIP_SYMBOL_BUSY for d in again for r in d.reasons)
    finally:
        store.close()
