"""The trading cycle through a real Prefect API server (the session's temporary one)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, ReasonCode
from kestrel.risk.controls import set_emergency_stop
from kestrel.runtime import get_runtime, reset_runtimes
from kestrel.store.router import StoreRouter
from tests.deploy.helpers import latest_artifact, table_rows

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def simulated(data_dir: Path, **extra: Any) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=[
            {"symbol": "BTC/USDT", "timeframe": "1h"},
            {"symbol": "ETH/USDT", "timeframe": "1h"},
        ],
        paper={"market_data": "simulated", "seed": 11},
        **extra,
    )


def test_cycle_records_a_decision_event_per_symbol(
    prefect_harness: None, tmp_data_dir: Path
) -> None:
    from flows.trading_cycle import trading_cycle

    settings = simulated(tmp_data_dir)
    decisions = trading_cycle(config=settings.model_dump(mode="json"))
    assert sorted(d.symbol for d in decisions) == ["BTC/USDT", "ETH/USDT"]
    with trading_mode(TradingMode.DEMO):
        events = StoreRouter(settings).list_events(
            types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
        )
    assert sorted(e.symbol or "" for e in events) == ["BTC/USDT", "ETH/USDT"]
    assert all(e.reasons for e in events)
    assert {e.data["data_source"] for e in events} == {"SIMULATED (seed 11)"}
    rows = table_rows(latest_artifact("cycle-decisions-demo"))
    assert [row["data"] for row in rows] == ["SIMULATED (seed 11)"] * 2


def test_offline_cycle_stands_down_and_says_why(prefect_harness: None, tmp_data_dir: Path) -> None:
    """No network and no replay under market_data = "auto": no simulated trading, a
    BLOCKED_NO_MARKET_DATA event, and the decisions table says so."""
    from flows.trading_cycle import trading_cycle
    from tests.market.fake_binance import closed_port

    settings = load_settings(
        mode="DEMO",
        data_dir=tmp_data_dir,
        watchlist=[{"symbol": "BTC/USDT", "timeframe": "1h"}],
        exchange_api={"url": f"http://127.0.0.1:{closed_port()}"},
        paper={"market_data": "auto"},
    )
    assert trading_cycle(config=settings.model_dump(mode="json")) == []
    with trading_mode(TradingMode.DEMO):
        store = StoreRouter(settings)
        [blocked] = store.list_events(types=[EventType.TRADE_BLOCKED])
        assert store.list_orders() == []
        assert store.list_events(types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD]) == []
    assert blocked.reasons == [ReasonCode.BLOCKED_NO_MARKET_DATA.value]
    [row] = table_rows(latest_artifact("cycle-decisions-demo"))
    assert row["data"] == "none" and "BLOCKED_NO_MARKET_DATA" in row["detail"]


def test_cycles_over_a_moving_market_place_and_fill_orders(
    prefect_harness: None, tmp_data_dir: Path
) -> None:
    from flows.demo import demo_session

    settings = simulated(tmp_data_dir)
    summary = demo_session(config=settings.model_dump(mode="json"), cycles=60)
    assert summary.fills > 0
    assert summary.reconciled, summary.books
    rows = {row["currency"]: row for row in table_rows(latest_artifact("demo-summary"))}
    usdt = next(book for book in summary.books if book.currency == "USDT")
    assert Decimal(rows["USDT"]["cash"]) == usdt.cash
    assert rows["USDT"]["reconciled"] == "yes"


def test_emergency_stop_blocks_every_symbol(prefect_harness: None, tmp_data_dir: Path) -> None:
    from flows.trading_cycle import trading_cycle

    settings = simulated(tmp_data_dir, risk={"min_confidence": 0.0})
    with trading_mode(TradingMode.DEMO):
        set_emergency_stop(StoreRouter(settings), active=True, reason="test", by="pytest")
    for _ in range(30):  # until some symbol has a signal to block
        decisions = trading_cycle(config=settings.model_dump(mode="json"))
        signalled = [
            d for d in decisions if ReasonCode.SKIP_NO_SIGNAL not in {r.code for r in d.reasons}
        ]
        if signalled:
            break
        with trading_mode(TradingMode.DEMO):
            get_runtime(settings).feed.advance()  # type: ignore[union-attr]
    assert signalled, "the simulated market never produced a signal in 30 candles"
    for decision in signalled:
        assert ReasonCode.BLOCKED_EMERGENCY_STOP in {r.code for r in decision.reasons}
    with trading_mode(TradingMode.DEMO):
        assert StoreRouter(settings).list_orders() == []


def test_bad_settings_fail_before_any_task(prefect_harness: None, tmp_data_dir: Path) -> None:
    from flows.trading_cycle import trading_cycle
    from kestrel.errors import ConfigError

    with pytest.raises(ConfigError, match=r"watchlist\.0\.timeframe"):
        trading_cycle(
            config={
                "data_dir": str(tmp_data_dir),
                "watchlist": [{"symbol": "BTC/USDT", "timeframe": "2m"}],
            }
        )
