"""End to end, for real: a `prefect server start` (SQLite, loopback), a process worker,
`prefect deploy --all` from the repository root, then `prefect deployment run` of the trading
cycle and of order sync in REAL mode against the Binance emulator (ccxt pointed at it through
KESTREL_EXCHANGE_API__URL, API keys from the environment). Results are checked in the store
and, through the Prefect API, in the dashboards' artifacts and the runs' logs.

The candles are a deterministic wave whose last closed candle (at the last full hour, so the
cycle finds them fresh by the wall clock) is an EMA up-crossing: the cycle buys; the emulator
then moves on until the stop-loss placed by order sync fills.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from deployments.server import LocalPrefectServer
from emulator import AccountConfig, BinanceEmulator
from kestrel.config.settings import load_settings
from kestrel.mode import TradingMode
from kestrel.models import Candle, CandleSeries, OrderRole, OrderStatus, StatusSource
from kestrel.store import open_store

from .helpers import (
    REPO,
    cli_env,
    hourly_candles,
    latest_artifact,
    prefect_cli,
    run_deployment_cli,
    run_logs,
    table_rows,
    wait_for_run,
    wave_closes,
)

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900)]

API_KEY, API_SECRET = "e2e-key", "e2e-secret"
SYMBOLS = {"BTC/USDT": 30_000.0, "ETH/USDT": 2_000.0}
CANDLES = 340
CYCLE = "kestrel-trading-cycle/trading-cycle-majors"
SYNC = "kestrel-order-sync/order-sync"
ONE_PASS = {"config": {"exchange_api": {"sync_window_s": 0}}}


def buy_index(closes: list[float]) -> int:
    """The first candle (past warm-up) whose analysis says BUY: the cycle's last candle."""
    from kestrel.analysis import analyze

    candles = [Candle.from_ccxt(row) for row in hourly_candles(closes, len(closes) - 1)]
    for index in range(100, len(closes) - 40):
        series = CandleSeries(
            symbol="BTC/USDT", timeframe="1h", candles=candles[: index + 1], source="test"
        )
        if analyze(series).signal.action.value == "BUY":
            return index
    raise AssertionError("no BUY signal on the test wave: the analysis changed a lot")


@pytest.fixture
def emulator() -> Iterator[BinanceEmulator]:
    closes = {symbol: wave_closes(CANDLES, base) for symbol, base in SYMBOLS.items()}
    start = buy_index(closes["BTC/USDT"])
    markets = {symbol: hourly_candles(c, start) for symbol, c in closes.items()}
    account = AccountConfig(api_key=API_KEY, secret=API_SECRET, balances={"USDT": Decimal("10000")})
    with BinanceEmulator(markets, [account], start_index=start) as emu:
        yield emu
    assert not emu.internal_errors, emu.internal_errors


@pytest.fixture
def worker(
    prefect_server: LocalPrefectServer, client_home: Path, tmp_path: Path, emulator: BinanceEmulator
) -> Iterator[dict[str, str]]:
    """The environment of a REAL-mode Kestrel installation, and a process worker in it."""
    config = tmp_path / "kestrel.toml"
    config.write_text("# empty: this test sets everything through the environment\n")
    env = cli_env(
        prefect_server.api_url,
        client_home,
        {
            "KESTREL_CONFIG": str(config),
            "KESTREL_MODE": "REAL",
            "KESTREL_DATA_DIR": str(tmp_path / "kestrel-data"),
            "KESTREL_EXCHANGE_API__URL": emulator.url,
            "KESTREL_BINANCE_API_KEY": API_KEY,
            "KESTREL_BINANCE_API_SECRET": API_SECRET,
            "KESTREL_HOME": str(REPO),
        },
    )
    prefect_cli(["work-pool", "create", "kestrel-process", "--type", "process"], env)
    log = (tmp_path / "worker.log").open("wb")
    command = [sys.executable, "-m", "prefect", "worker", "start"]
    process = subprocess.Popen(
        [*command, "--pool", "kestrel-process", "--limit", "2"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield env
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _by_cid(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["client_order_id"]: row for row in rows}


def test_deploy_and_run_real_mode_against_the_emulator(
    prefect_api: str, worker: dict[str, str], emulator: BinanceEmulator, tmp_path: Path
) -> None:
    from prefect import get_client

    # -- prefect deploy --all from the repository root --------------------------------------
    prefect_cli(["deploy", "--all"], worker, timeout_s=300)
    with get_client(sync_client=True) as client:
        deployed = {d.name: d for d in client.read_deployments()}
    expected = {"trading-cycle-majors", "trading-cycle-alts", "order-sync", "position-monitor"}
    expected |= {"notifications", "daily-report", "emergency-stop", "dashboards", "telegram-bot"}
    assert expected <= set(deployed)
    cycle = deployed["trading-cycle-majors"]
    assert cycle.global_concurrency_limit is not None
    assert cycle.global_concurrency_limit.limit == 1
    assert cycle.concurrency_options is not None
    assert cycle.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert deployed["order-sync"].concurrency_options is not None
    assert deployed["order-sync"].concurrency_options.collision_strategy.value == "ENQUEUE"
    sync_schedules = deployed["order-sync"].schedules
    intervals = [getattr(s.schedule, "interval", None) for s in sync_schedules]
    assert intervals == [timedelta(seconds=60)]
    assert cycle.work_pool_name == "kestrel-process"

    # -- the trading cycle: both symbols buy at market ---------------------------------------
    cycle_run = wait_for_run(run_deployment_cli(CYCLE, None, worker))
    assert cycle_run.state.type.value == "COMPLETED", cycle_run.state.message

    settings = load_settings(mode="REAL", data_dir=tmp_path / "kestrel-data")
    store = open_store(settings, TradingMode.REAL)
    try:
        buys = store.list_orders(roles=[OrderRole.PRIMARY])
        assert sorted(o.symbol for o in buys) == sorted(SYMBOLS)
        assert all(o.status is OrderStatus.FILLED for o in buys)
        assert all(o.status_source is StatusSource.CREATE_RESPONSE for o in buys)
        assert all(o.client_order_id.startswith("krp-") for o in buys)
        decided = store.list_events(types=["TRADE_DECIDED"])  # type: ignore[list-item]
        assert {e.symbol for e in decided} == set(SYMBOLS)
        assert all("SIGNAL_BUY" in e.reasons for e in decided)
    finally:
        store.close()

    # -- order sync: positions get their exchange-side stop-loss -----------------------------
    sync_run = wait_for_run(run_deployment_cli(SYNC, ONE_PASS, worker))
    assert sync_run.state.type.value == "COMPLETED", sync_run.state.message
    open_rows = table_rows(latest_artifact("kestrel-open-orders-real"))
    stops = [row for row in open_rows if row["role"] == "STOP_LOSS"]
    assert sorted(row["symbol"] for row in stops) == sorted(SYMBOLS)
    assert all(row["status"] == "OPEN" and row["stop_price"] for row in stops)

    # -- the market falls through the stops; the next sync confirms the fills ---------------
    stop_prices = {row["symbol"]: Decimal(row["stop_price"]) for row in stops}
    for _ in range(CANDLES):
        if all(emulator.price(s) < stop * Decimal("0.99") for s, stop in stop_prices.items()):
            break
        assert emulator.advance() == 1, "the test wave ran out before the stops were hit"
    emulator.advance()
    second = wait_for_run(run_deployment_cli(SYNC, ONE_PASS, worker))
    assert second.state.type.value == "COMPLETED", second.state.message

    store = open_store(settings, TradingMode.REAL)
    try:
        stop_orders = {o.client_order_id: o for o in store.list_orders(roles=[OrderRole.STOP_LOSS])}
        positions = store.list_positions()
    finally:
        store.close()
    assert {o.status for o in stop_orders.values()} == {OrderStatus.FILLED}
    assert {o.status_source for o in stop_orders.values()} <= {
        StatusSource.OPEN_ORDERS,
        StatusSource.ORDER_HISTORY,
        StatusSource.TRADE_HISTORY,
    }
    assert {p.status.value for p in positions} == {"CLOSED"}

    # -- the dashboards, read back through the Prefect API ----------------------------------
    executed = _by_cid(table_rows(latest_artifact("kestrel-executed-orders-real")))
    for order in [*buys, *stop_orders.values()]:
        row = executed[order.client_order_id]
        assert row["status"] == "FILLED"
        assert row["status_source"] in {s.value for s in StatusSource}
    assert {executed[o.client_order_id]["status_source"] for o in buys} == {"create_response"}
    assert table_rows(latest_artifact("kestrel-open-orders-real")) == []
    monitoring = latest_artifact("kestrel-monitoring-real").data
    assert "**REAL**" in monitoring
    assert "Emergency stop | off" in monitoring
    for symbol in SYMBOLS:
        assert f"| {symbol} |" in monitoring
    audit = table_rows(latest_artifact("kestrel-audit-real"))
    decided_rows = [row for row in audit if row["type"] == "TRADE_DECIDED"]
    assert decided_rows and all("SIGNAL_BUY" in row["reasons"] for row in decided_rows)
    portfolio = table_rows(latest_artifact("kestrel-portfolio-real"))
    assert {row["symbol"] for row in portfolio} >= {*SYMBOLS, "TOTAL USDT"}

    # -- order lines in the run logs carry mode, symbol and client order id ------------------
    order_lines = [line for line in run_logs(cycle_run.id) if "krp-" in line]
    assert len(order_lines) >= len(SYMBOLS)
    for line in order_lines:
        assert line.startswith("[REAL "), line
        assert any(f"[REAL {symbol} krp-" in line for symbol in SYMBOLS), line
