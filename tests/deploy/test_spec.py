"""prefect.yaml and docker-compose.yml, read as data: every deployment loads and accepts its
own default parameters, the collision strategies are the ones argued for in the file, and
serving builds the same deployments as `prefect deploy`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from deployments.spec import ConcurrencySpec, DeploymentSpec, load_specs, runner_deployment
from deployments.steps import enter_project, project_root
from kestrel.config.settings import WatchlistItem

from .helpers import REPO

EXPECTED = {
    "trading-cycle-majors": "CANCEL_NEW",
    "trading-cycle-alts": "CANCEL_NEW",
    "order-sync": "ENQUEUE",
    "position-monitor": "ENQUEUE",
    "notifications": "CANCEL_NEW",
    "daily-report": "ENQUEUE",
    "telegram-bot": "CANCEL_NEW",
    "emergency-stop": None,
    "dashboards": "CANCEL_NEW",
    "live-engine": "CANCEL_NEW",  # one engine per installation: a second start is refused
    # Operator actions: never queued behind anything; tokens and request ids make them safe.
    "manual-order": None,
    "manual-close": None,
    "manual-close-all": None,
    "manual-move-stop": None,
    "manual-confirm": None,
    "manual-cancel": None,
    "paper-reset": None,
    "settings-change": None,
    "backtest": None,  # each run is one independent backtest
}
# What an operator must type in for the deployments that have no sensible defaults.
REQUIRED_AT_RUN = {
    "manual-order": {"symbol": "BTC/USDT", "side": "buy", "amount": "0.001"},
    "manual-close": {"symbol": "BTC/USDT"},
    "manual-move-stop": {"symbol": "BTC/USDT"},
    "manual-confirm": {"token": "0123456789abcdef"},
    "manual-cancel": {"order": "kdp-0123"},
    "paper-reset": {"balance": "10000"},
    "settings-change": {"action": "set", "key": "risk.min_confidence", "value": "0.6"},
}


@pytest.fixture(scope="module")
def specs() -> dict[str, DeploymentSpec]:
    return {spec.name: spec for spec in load_specs()}


def test_every_deployment_and_its_collision_strategy(specs: dict[str, DeploymentSpec]) -> None:
    assert set(specs) == set(EXPECTED)
    for name, strategy in EXPECTED.items():
        limit = specs[name].concurrency_limit
        if strategy is None:
            assert limit is None, name
        else:
            assert isinstance(limit, ConcurrencySpec), name
            assert (limit.limit, limit.collision_strategy) == (1, strategy), name
        assert specs[name].work_pool["name"] == "kestrel-process"
        assert "kestrel" in specs[name].tags  # the dead-man's crash automation matches it


def test_defaults_validate_against_each_flow(specs: dict[str, DeploymentSpec]) -> None:
    """What Prefect checks at run time (enforce_parameter_schema), checked here first."""
    for spec in specs.values():
        flow = spec.load_flow()
        given = {**spec.parameters, **REQUIRED_AT_RUN.get(spec.name, {})}
        validated = flow.validate_parameters(given)
        if "operator" in spec.tags and spec.name != "emergency-stop":  # optional ones: defaults
            assert set(given) <= set(validated), spec.name
        else:
            assert set(validated) == set(given), spec.name


def test_one_trading_cycle_per_watchlist(specs: dict[str, DeploymentSpec]) -> None:
    cycles = [s for s in specs.values() if s.name.startswith("trading-cycle-")]
    watchlists = [s.parameters["watchlist"] for s in cycles]
    assert len(set(watchlists)) == len(cycles) >= 2
    symbols: list[str] = []
    for spec in cycles:
        assert spec.name == f"trading-cycle-{spec.parameters['watchlist']}"
        assert [s.interval for s in spec.schedules] == [300]
        items = [WatchlistItem.model_validate(i) for i in spec.parameters["items"]]
        symbols += [item.symbol for item in items]
    assert len(symbols) == len(set(symbols)), "a symbol traded by two watchlists"


def test_upkeep_polls_within_its_schedule(specs: dict[str, DeploymentSpec]) -> None:
    """Sub-minute freshness comes from polling inside 60 s runs, not from 5 s schedules."""
    from kestrel.exchange.settings import ExchangeSettings

    access = ExchangeSettings()
    for name, window in (
        ("order-sync", access.sync_window_s),
        ("position-monitor", access.monitor_window_s),
    ):
        [schedule] = specs[name].schedules
        assert schedule.interval == 60
        assert window < 60  # a run ends before the next one is due
    daily = specs["daily-report"].schedules[0]
    assert (daily.cron, daily.timezone) == ("5 0 * * *", "UTC")
    assert specs["emergency-stop"].schedules == []
    assert specs["telegram-bot"].schedules[0].active is False


def test_served_deployments_match_the_file(specs: dict[str, DeploymentSpec]) -> None:
    for spec in specs.values():
        served = runner_deployment(spec)
        assert served.name == spec.name
        assert served.parameters == spec.parameters
        assert served.entrypoint is not None and served.entrypoint.endswith(
            spec.module_and_attribute[1]
        )
        intervals = [getattr(s.schedule, "interval", None) for s in served.schedules or []]
        expected = [timedelta(seconds=s.interval) for s in spec.schedules if s.interval]
        assert [i for i in intervals if i is not None] == expected
        if isinstance(spec.concurrency_limit, ConcurrencySpec):
            assert served.concurrency_options is not None
            assert served.concurrency_options.collision_strategy.value == (
                spec.concurrency_limit.collision_strategy
            )


def test_pull_step_enters_the_project(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KESTREL_HOME", raising=False)
    assert enter_project() == {"directory": str(REPO)}
    assert project_root() == REPO
    monkeypatch.setenv("KESTREL_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="KESTREL_HOME"):
        enter_project()
    document = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert document["pull"] == [{"deployments.steps.enter_project": {}}]


def test_docker_compose_is_wired() -> None:
    """No Docker engine here: check the file's structure and cross-references instead."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    assert {"mongo", "postgres", "prefect-server", "kestrel", "worker"} <= set(services)
    assert "--replSet" in services["mongo"]["command"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    server = services["prefect-server"]
    assert server["image"].startswith("prefecthq/prefect:3.8.8")
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://"
    )
    assert services["worker"]["command"][:5] == [
        "prefect",
        "worker",
        "start",
        "--pool",
        "kestrel-process",
    ]
    assert services["kestrel"]["command"] == ["kestrel", "deploy"]
    for name in ("kestrel", "worker"):
        env = services[name]["environment"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert "replicaSet=rs0" in env["KESTREL_STORE_URI"]
        assert (REPO / services[name]["build"]["dockerfile"]).is_file()
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
    declared = set(compose.get("volumes") or {})
    for service in services.values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            assert source in declared, source
    dockerfile = (REPO / "deployments" / "Dockerfile").read_text()
    assert "uv sync --locked --no-dev" in dockerfile
