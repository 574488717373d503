"""The trading cycle runs its stages on a Dask cluster when the settings say so
(ops.task_runner=dask): here a real LocalCluster of two worker processes. Each stage is one
task over every symbol (tasks/trading.py), so each runs once, on a worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.runners import task_runner_for
from kestrel.config.ops import OpsSettings
from kestrel.config.settings import WatchlistItem, load_settings
from kestrel.mode import TradingMode
from kestrel.store import open_store

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(300)]

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
STEPS = ("fetch_stage", "trade_stage")  # analysis varies by mode


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def test_runner_choice() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    threads = task_runner_for(OpsSettings(max_workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    local = task_runner_for(OpsSettings(task_runner="dask", dask_workers=3))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 3
    remote = task_runner_for(OpsSettings(task_runner="dask", dask_address="tcp://dask:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://dask:8786"
    with pytest.raises(ValueError, match="tcp://"):
        OpsSettings(dask_address="dask:8786")


def test_cycle_runs_its_stages_on_dask_workers(
    prefect_api: str, dask_cluster: Any, tmp_path: Path
) -> None:
    from distributed import Client, get_task_stream

    from flows.trading_cycle import trading_cycle

    config = {
        "mode": "DEMO",
        "data_dir": str(tmp_path / "data"),
        "paper": {"market_data": "simulated"},
        "ops": {"task_runner": "dask", "dask_address": dask_cluster.scheduler_address},
    }
    with Client(dask_cluster) as client, get_task_stream(client) as stream:
        state = trading_cycle(
            watchlist="dask",
            items=[WatchlistItem(symbol=s) for s in SYMBOLS],
            config=config,
            return_state=True,
        )
    assert state.is_completed(), state.message
    ran = [(str(t["key"]), t["worker"]) for t in stream.data]
    workers = set(dask_cluster.scheduler.workers)
    for step in STEPS:
        on_dask = [worker for key, worker in ran if step in key]
        assert len(on_dask) == 1, (step, ran)  # one task run over every symbol
        assert set(on_dask) <= workers
    # Every symbol was decided (and stored, as an event, by a worker process).
    store = open_store(load_settings(**config), TradingMode.DEMO)
    try:
        decided = store.list_events(
            types=["TRADE_DECIDED", "TRADE_HELD", "TRADE_BLOCKED"]  # type: ignore[list-item]
        )
    finally:
        store.close()
    assert {event.symbol for event in decided} == set(SYMBOLS)
