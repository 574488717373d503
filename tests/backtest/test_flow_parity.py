"""Through a real Prefect API server: the `backtest` flow publishes its artifact, and the
Prefect replay demo and a backtest over the same data and settings make the same orders,
fills and final balances."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.backtest import backtest_store, execute, prepare
from kestrel.backtest.engine import BACKTEST_INSTALLATION
from kestrel.ids import INSTALLATION_KEY
from kestrel.mode import TradingMode, trading_mode
from kestrel.runtime import reset_runtimes
from kestrel.store.base import Store
from kestrel.store.router import open_store
from tests.backtest.helpers import btc_settings, sine_folder, spec
from tests.deploy.helpers import latest_artifact

pytestmark = pytest.mark.prefect

DEMO_WARMUP = 200  # kestrel.market.replay.DEFAULT_WARMUP: what the demo's replay starts with
STEPS = 80


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def books(store: Store) -> dict[str, Any]:
    account = store.get_state("paper_account")
    assert account is not None
    return {
        "orders": [
            (o.client_order_id, o.symbol, o.side, o.type, o.role, o.amount, o.status, o.filled,
             o.average_price, o.stop_price, o.reason)
            for o in store.list_orders()
        ],
        "fills": [
            (f.client_order_id, f.amount, f.price, f.fee_cost, f.fee_currency, f.timestamp)
            for f in store.list_fills()
        ],
        "balances": {c: Decimal(v) for c, v in account[0]["balances"].items()},
    }  # fmt: skip


def test_backtest_flow_publishes_tables_and_chart(prefect_harness: None, tmp_path: Path) -> None:
    from flows.backtest import ARTIFACT_KEY, backtest

    folder = sine_folder(tmp_path)
    settings = btc_settings(tmp_path / "data")
    done = backtest(spec=spec(folder), config=settings.model_dump(mode="json"))
    assert done["reconciled"] is True and done["metrics"]["trade_count"] >= 2
    artifact = latest_artifact(ARTIFACT_KEY)
    text = str(artifact.data)
    assert "## Books per currency" in text and "## Per exit reason" in text
    assert "data:image/png;base64," in text
    assert Path(done["folder"], "result.json").is_file()


def test_demo_and_backtest_trade_alike(prefect_harness: None, tmp_path: Path) -> None:
    from flows.demo import demo_session

    folder = sine_folder(tmp_path, steps=STEPS, warmup=DEMO_WARMUP)
    demo_settings = btc_settings(
        tmp_path / "demo",
        paper={
            "quote_currency": "BTC",
            "starting_balance": Decimal("1"),
            "market_data": "replay",
            "replay_dir": folder,
        },
    )
    seeded = open_store(demo_settings, TradingMode.DEMO)  # the same installation id
    seeded.put_state(INSTALLATION_KEY, {"id": BACKTEST_INSTALLATION}, expected_version=0)
    seeded.close()
    summary = demo_session(config=demo_settings.model_dump(mode="json"), cycles=STEPS + 10)
    assert summary.cycles == STEPS and summary.reconciled
    with trading_mode(TradingMode.DEMO):
        demo_store = open_store(demo_settings, TradingMode.DEMO)
        try:
            demo = books(demo_store)
        finally:
            demo_store.close()
    with backtest_store() as store:
        run = execute(
            prepare(btc_settings(tmp_path / "bt"), spec(folder, warmup=DEMO_WARMUP), store)
        )
        assert run.cycles == STEPS
        backtested = books(store)
    assert len(demo["fills"]) >= 2
    assert backtested == demo
