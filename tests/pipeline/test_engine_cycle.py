"""The live engine's cycle through a real Prefect API server: the symbols whose candles closed
together run as one cycle inside the engine's own flow run, each stage a task run of that
run (visible in the UI with its state and logs), and its decisions table is that run's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from kestrel.config.settings import load_settings
from kestrel.live.engine import ClosedCandle
from kestrel.mode import trading_mode
from kestrel.runtime import get_runtime, reset_runtimes
from kestrel.trading import cycle
from tests.deploy.helpers import latest_artifact, table_rows

pytestmark = pytest.mark.prefect

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def test_candles_closing_together_are_one_cycle_of_stage_tasks_in_the_engine_run(
    prefect_harness: None, tmp_data_dir: Path
) -> None:
    from prefect import flow, get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.runtime import flow_run

    from flows.live import PrefectHooks

    settings = load_settings(
        mode="DEMO",
        data_dir=tmp_data_dir,
        watchlist=[{"symbol": s, "timeframe": "1h"} for s in SYMBOLS],
        paper={"market_data": "simulated", "seed": 11},
    )

    @flow(name="engine-like")
    def engine() -> str:
        with trading_mode(settings.mode):
            rt = get_runtime(settings)
            closed = [
                ClosedCandle(
                    i.symbol, i.timeframe, cycle.fetch_candles(rt, i).candles[-1].timestamp
                )
                for i in settings.watchlist
            ]
            hooks = PrefectHooks(settings, rt)
            hooks.run_cycle(closed)
            hooks.tables.wait()
        return str(flow_run.get_id())

    run_id = UUID(engine())
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    names = sorted(run.name for run in runs)
    assert names == sorted(f"{stage}-BTC/USDT,ETH/USDT" for stage in ("fetch", "analyze", "trade"))
    assert all(run.state is not None and run.state.is_completed() for run in runs)
    assert [r.id for r in subflows] == [run_id]  # no subflow per symbol
    table = latest_artifact("cycle-decisions-demo")
    assert table.flow_run_id == run_id
    assert sorted(row["symbol"] for row in table_rows(table)) == SYMBOLS
