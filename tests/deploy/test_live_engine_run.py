"""The live engine as a user runs it, on a real Prefect server, REAL mode against the emulator
with the real ccxt.pro client: while it runs, the order-sync deployment's schedule is paused
(the engine stands in for it); a streamed candle close runs a cycle whose stages are task runs
of the engine's own flow run, next to its order-sync subflow runs, so the Prefect UI shows each;
the run ends Completed at its recycling bound, and the schedule is resumed.

Waits are on conditions (a subscription, a paused flag, the run's end), bounded only as hang
guards."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest

from deployments.spec import load_specs, runner_deployment
from emulator import BinanceEmulator
from tests.emulator.scripted import KEY, SECRET, account, scripted_market

from .test_one_flow import run_levels

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(300)]

HANG_GUARD_S = 120


@pytest.fixture
def emu() -> Iterator[BinanceEmulator]:
    e = BinanceEmulator([scripted_market()], accounts=[account(usdt="1000")]).start()
    yield e
    e.stop()


@pytest.fixture
def real_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: BinanceEmulator) -> Path:
    """A REAL installation pointed at the emulator, from the environment only."""
    for key in [k for k in os.environ if k.startswith("KESTREL_")]:
        monkeypatch.delenv(key)
    (tmp_path / "kestrel.toml").write_text("")
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "kestrel.toml"))
    monkeypatch.setenv("KESTREL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KESTREL_MODE", "REAL")
    monkeypatch.setenv("KESTREL_EXCHANGE_API__URL", emu.url)
    monkeypatch.setenv("KESTREL_EXCHANGE_API__WS_URL", emu.ws_url)
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("KESTREL_WATCHLIST", '[{"symbol": "BTC/USDT", "timeframe": "1h"}]')
    return tmp_path


@pytest.fixture
def order_sync_deployment(prefect_api: str) -> Iterator[UUID]:
    from prefect import get_client

    spec = next(s for s in load_specs() if s.name == "order-sync")
    deployment_id = cast(UUID, runner_deployment(spec).apply())
    yield deployment_id
    with get_client(sync_client=True) as client:
        client.resume_deployment(deployment_id)


def until(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        assert time.monotonic() < deadline, f"hang guard: still waiting for {what}"
        time.sleep(0.05)


def is_paused(deployment_id: UUID) -> bool:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return bool(client.read_deployment(deployment_id).paused)


def children(flow_run_id: UUID) -> tuple[list[str], list[str]]:
    """Names of the engine run's task runs, and of the flows of its subflow runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])),
            limit=200,
        )
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            ),
            limit=200,
        )
        flow_names = {f.id: f.name for f in client.read_flows()}
    return [t.name for t in tasks], [flow_names.get(r.flow_id, "?") for r in subflows]


def test_the_engine_trades_a_closed_candle_as_tasks_of_its_run_and_hands_back(
    real_env: Path, emu: BinanceEmulator, order_sync_deployment: UUID
) -> None:
    from prefect.client.schemas.objects import State
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from flows.live import live_engine
    from kestrel.live.recycle import RecycleBound

    outcome: list[Any] = []
    context = contextvars.copy_context()  # this test's Prefect API settings, in the thread

    def engine() -> None:
        outcome.append(live_engine(recycle=RecycleBound(after_cycles=1), return_state=True))

    run = threading.Thread(target=context.run, args=(engine,), daemon=True)
    run.start()
    streams = emu.streams
    until("the kline subscription", lambda: streams.subscribers("btcusdt@kline_1h") > 0)
    until("the takeover of order-sync", lambda: is_paused(order_sync_deployment))

    emu.advance()  # the next hourly candle closes on the stream: one cycle, then the bound
    run.join(HANG_GUARD_S)
    assert not run.is_alive(), "hang guard: the engine did not end at its bound"

    state = outcome[0]
    assert isinstance(state, State) and state.is_completed(), state
    summary = state.result()
    assert "1 cycle(s)" in summary and "ended for a fresh process" in summary, summary
    assert not is_paused(order_sync_deployment)  # handed back on the clean stop

    run_id = UUID(str(state.state_details.flow_run_id))
    EventsWorker.drain_all(timeout=10)  # task runs reach the server as events
    APILogWorker.drain_all(timeout=10)

    def stages() -> set[str]:
        return {name.split("-")[0] for name in children(run_id)[0]}

    until("the cycle's task runs recorded", lambda: {"fetch", "analyze", "trade"} <= stages())
    assert "kestrel-order-sync" in children(run_id)[1]  # the start-up sync, visible as a run
    lines = run_levels(run_id)
    assert any("paused the schedules of" in m and "order-sync" in m for _, m in lines), lines
    assert [m for level, m in lines if level >= logging.ERROR] == [], lines
