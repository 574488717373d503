"""One flow per job: what prefect.yaml deploys is what the `kestrel` CLI runs, with no
wrapper and no subflow; its parameters are typed, so Prefect refuses a wrong type when the
run is created; and the outcomes a job expects end it with a clear state and one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner

from deployments.spec import DeploymentSpec, load_specs, runner_deployment

from .helpers import REPO, cli_env

pytestmark = pytest.mark.prefect
PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]

# The CLI command of each job, and the deployment that runs the same job on a server.
CLI_JOBS = {
    ("cycle",): "trading-cycle-majors",
    ("sync",): "order-sync",
    ("sync-loop", "--window", "0"): "order-sync",
    ("monitor", "--window", "0"): "position-monitor",
}


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DEMO installation on a simulated market, from the environment only."""
    for key in [k for k in os.environ if k.startswith("KESTREL_")]:
        monkeypatch.delenv(key)
    (tmp_path / "kestrel.toml").write_text("")
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "kestrel.toml"))
    monkeypatch.setenv("KESTREL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KESTREL_PAPER__MARKET_DATA", "simulated")
    monkeypatch.setenv("KESTREL_WATCHLIST", '[{"symbol": "BTC/USDT"}]')
    return tmp_path


def specs_by_name() -> dict[str, DeploymentSpec]:
    return {spec.name: spec for spec in load_specs()}


def flow_runs() -> list[Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return list(client.read_flow_runs(limit=200))


def flow_names(runs: list[Any]) -> dict[UUID, str]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {run.flow_id: client.read_flow(run.flow_id).name for run in runs}


def test_the_cli_runs_the_flow_its_deployment_runs(prefect_api: str, demo_env: Path) -> None:
    from cli import app

    specs = specs_by_name()
    for command, deployment in CLI_JOBS.items():
        before = {run.id for run in flow_runs()}
        done = CliRunner().invoke(app, list(command))
        assert done.exit_code == 0, done.output
        new = [run for run in flow_runs() if run.id not in before]
        assert len(new) == 1, f"kestrel {command}: {len(new)} flow runs (a wrapper or a subflow)"
        [run] = new
        assert run.parent_task_run_id is None
        deployed = specs[deployment].load_flow()
        assert flow_names(new)[run.flow_id] == deployed.name, command
        assert deployed.name.startswith("kestrel-")


def test_every_deployment_runs_a_flow_of_flows(prefect_api: str) -> None:
    """No deployment-only wrapper: each entrypoint is a flow of flows/ under its one name."""
    for spec in load_specs():
        module, _ = spec.module_and_attribute
        assert module.startswith("flows."), spec.entrypoint
        name = spec.load_flow().name
        assert name.startswith("kestrel-") or name.startswith(("manual-", "paper-", "settings-"))


def test_a_wrong_type_is_refused_before_any_run_starts(
    prefect_api: str, client_home: Path, tmp_path: Path
) -> None:
    from prefect import get_client

    # A deployment of its own: other tests on this server run the order-sync deployment.
    spec = specs_by_name()["order-sync"].model_copy(update={"name": f"typed-{uuid4().hex[:8]}"})
    deployment_id = runner_deployment(spec).apply()
    env = cli_env(prefect_api, client_home)
    name = f"{spec.load_flow().name}/{spec.name}"
    for params in (
        {"config": {"risk": {"min_confidence": "high"}}},
        {"config": {"no_such_setting": 1}},
        {"window_s": "soon"},
        {"blocks": {"store": 5}},
    ):
        done = subprocess.run(
            [*PREFECT, "deployment", "run", name, "--params", json.dumps(params)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode != 0, (params, done.stdout)
        assert "Validation failed" in done.stdout + done.stderr, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    assert runs == [], "a run was created with a wrong-typed parameter"


def run_levels(flow_run_id: UUID) -> list[tuple[int, str]]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    return [(log.level, log.message) for log in logs]


def test_a_bad_setting_cancels_the_run_in_one_warning(prefect_api: str, demo_env: Path) -> None:
    from prefect.logging.handlers import APILogWorker
    from prefect.states import State

    from flows.upkeep import order_sync

    config = {"watchlist": [{"symbol": "BTC/USDT", "timeframe": "2m"}]}
    state = order_sync(config=config, return_state=True)
    assert isinstance(state, State)
    assert state.is_cancelled(), state
    assert "watchlist.0.timeframe" in (state.message or "")
    APILogWorker.drain_all(timeout=10)
    lines = run_levels(UUID(str(state.state_details.flow_run_id)))
    assert [m for level, m in lines if level >= logging.ERROR] == [], lines
    warnings = [m for level, m in lines if level == logging.WARNING]
    assert len(warnings) == 1 and "bad parameter" in warnings[0], lines


def test_the_emergency_stop_says_so_once_at_the_cycle_level(
    prefect_api: str, demo_env: Path
) -> None:
    from prefect.logging.handlers import APILogWorker
    from prefect.states import State

    from flows.ops import StopAction, emergency_stop
    from flows.trading_cycle import trading_cycle

    emergency_stop(action=StopAction.STOP, reason="drill")
    config = {"risk": {"min_confidence": 0.0}, "watchlist": [{"symbol": "BTC/USDT"}]}
    state = trading_cycle(watchlist="stopped", config=config, return_state=True)
    assert isinstance(state, State) and state.is_completed(), state
    assert "emergency stop active (drill, set by prefect:" in (state.message or "")
    APILogWorker.drain_all(timeout=10)
    lines = run_levels(UUID(str(state.state_details.flow_run_id)))
    assert [m for level, m in lines if level >= logging.ERROR] == [], lines
    said = [m for level, m in lines if level >= logging.WARNING and "emergency stop" in m]
    assert len(said) == 1 and said[0].startswith("emergency stop active"), lines
    decided = state.result()
    assert isinstance(decided, list) and [d.symbol for d in decided] == ["BTC/USDT"]
    emergency_stop(action=StopAction.RESUME, reason="drill over")


def test_the_live_engine_on_a_paper_market_that_is_not_live_is_cancelled_in_one_warning(
    prefect_api: str, demo_env: Path
) -> None:
    """The live engine streams from the exchange: in DEMO its paper wallet must be priced by
    live data, so on a simulated market it stands down with a clear Cancelled state and one
    WARNING, not a Failed run with a traceback."""
    from prefect.logging.handlers import APILogWorker
    from prefect.states import State

    from flows.live import live_engine

    state = live_engine(config={"mode": "DEMO"}, return_state=True)
    assert isinstance(state, State)
    assert state.is_cancelled(), state
    assert "must be priced by live data, not simulated" in (state.message or "")
    APILogWorker.drain_all(timeout=10)
    lines = run_levels(UUID(str(state.state_details.flow_run_id)))
    assert [m for level, m in lines if level >= logging.ERROR] == [], lines
    assert [m for level, m in lines if level == logging.WARNING and "live engine" in m], lines


def test_the_live_engine_runs_in_demo_without_keys(prefect_api: str, demo_env: Path) -> None:
    """DEMO on live data (the emulator's public endpoints), no API keys in the environment:
    the engine runs (it does not stand down), on public streams only (no listenKey)."""
    from prefect.logging.handlers import APILogWorker
    from prefect.states import State

    from emulator import BinanceEmulator
    from flows.live import live_engine
    from tests.emulator.scripted import scripted_market

    with BinanceEmulator([scripted_market()]) as emu:
        config = {
            "mode": "DEMO",
            "exchange_api": {"url": emu.url, "ws_url": emu.ws_url},
            "paper": {"market_data": "live"},
            "watchlist": [{"symbol": "BTC/USDT", "timeframe": "1h"}],
        }
        state = live_engine(config=config, run_for_s=2.0, return_state=True)
        listen_keys = emu.request_count("/api/v3/userDataStream")
        klines = emu.request_count("/api/v3/klines")
    assert isinstance(state, State)
    assert state.is_completed(), state
    summary = state.result()
    assert isinstance(summary, str) and "paper fill sync(s) (DEMO)" in summary, summary
    assert listen_keys == 0 and klines > 0
    APILogWorker.drain_all(timeout=10)
    lines = run_levels(UUID(str(state.state_details.flow_run_id)))
    assert [m for level, m in lines if level >= logging.WARNING] == [], lines
