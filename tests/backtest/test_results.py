"""Results a trader reads: metrics, tables, charts, stored results and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from kestrel.backtest import BacktestSpec, run_backtest
from kestrel.backtest.storage import list_results, load
from kestrel.errors import ConfigError
from tests.backtest.helpers import btc_settings, sine_folder, spec


def test_run_stores_metrics_tables_and_charts(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path)
    settings = btc_settings(tmp_path / "data")
    outcome = run_backtest(settings, spec(folder, label="sine"))
    result = outcome.result
    m = result.metrics
    assert result.reconciled and result.status == "complete"
    assert m.trade_count == len(result.trades) >= 2
    for value in (m.total_return, m.max_drawdown, m.sharpe, m.sortino, m.win_rate):
        assert value is not None
    assert m.max_drawdown is not None and m.max_drawdown <= 0
    assert 0 < m.exposure <= 1
    assert m.fees_paid is not None and m.fees_paid > 0
    assert m.buy_and_hold_by_symbol.keys() == {"ETH/BTC"}
    assert result.decisions["SIGNAL_BUY"] >= 2 and "SKIP_NO_SIGNAL" in result.decisions
    assert sum(row["trades"] for row in result.by_symbol) == m.trade_count
    assert sum(row["trades"] for row in result.by_exit_reason) == m.trade_count
    closed = [t for t in result.trades if not t.is_open]
    assert all(t.exit_time and t.exit_time > t.entry_time for t in closed)
    assert outcome.folder is not None
    for name in (
        "result.json",
        "trades.csv",
        "equity.csv",
        "equity.png",
        "prices.png",
        "report.html",
    ):
        assert (outcome.folder / name).stat().st_size > 0, name
    assert (outcome.folder / "equity.png").read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((outcome.folder / "result.json").read_text())
    assert stored["metrics"]["trade_count"] == m.trade_count
    assert load(settings.data_dir, result.id) == result
    assert [r.id for r in list_results(settings.data_dir)] == [result.id]
    with pytest.raises(ConfigError, match="no backtest 'nope'"):
        load(settings.data_dir, "nope")


def test_cli_run_list_show_compare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sine_folder(tmp_path, steps=40)
    config = tmp_path / "kestrel.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[watchlist]]\nsymbol = "ETH/BTC"\ntimeframe = "5m"\nstrategy = "SCALP/AGGRESSIVE"\n'
        '[paper]\nquote_currency = "BTC"\nstarting_balance = 1\n'
        "[risk]\nstale_after_candles = 2\n"
        "[trading.gates]\ndaily_loss_limit = false\n"
    )
    monkeypatch.delenv("KESTREL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    args = ["backtest", "run", "--config", str(config), "--data", str(folder), "--warmup", "100"]
    first = runner.invoke(app, [*args, "--stake", "0.05", "--stake-currency", "BTC", "--no-charts"])
    assert first.exit_code == 0, first.output
    assert "RECONCILED" in first.output and "Sharpe" in first.output
    second = runner.invoke(app, [*args, "--fee", "0.002", "--no-charts", "--label", "fees x2"])
    assert second.exit_code == 0, second.output
    ids = [r.id for r in list_results(tmp_path / "data")]
    assert len(ids) == 2
    listed = runner.invoke(app, ["backtest", "list", "--results-dir", str(tmp_path / "data")])
    assert listed.exit_code == 0 and "fees x2" in listed.output
    shown = runner.invoke(
        app, ["backtest", "show", ids[0], "--results-dir", str(tmp_path / "data")]
    )
    assert shown.exit_code == 0 and "Metrics" in shown.output and "RECONCILED" in shown.output
    compared = runner.invoke(
        app, ["backtest", "compare", *ids, "--results-dir", str(tmp_path / "data")]
    )
    assert compared.exit_code == 0 and "max drawdown" in compared.output


def test_bad_input_is_named_and_nothing_is_stored(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=10)
    settings = btc_settings(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"no candle file for XMR/BTC"):
        run_backtest(settings, spec(folder, symbols=["XMR/BTC"]))
    with pytest.raises(ConfigError, match=r"fewer than 2 steps .* the data covers: ETH/BTC 5m"):
        run_backtest(settings, spec(folder, start="2030-01-01T00:00:00Z"))
    with pytest.raises(ValueError, match="taker_fee"):
        BacktestSpec(data_dir=folder, taker_fee=-0.001)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty range"):
        BacktestSpec(data_dir=folder, start="2024-01-02", end="2024-01-01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown timeframe"):
        BacktestSpec(data_dir=folder, timeframe="7m")
    bad = CliRunner().invoke(app, ["backtest", "run", "--data", str(folder), "--balance", "USDT:5"])
    assert bad.exit_code == 2 and "CURRENCY=AMOUNT" in bad.output
    assert list_results(settings.data_dir) == []


def test_the_config_option_does_not_leak_into_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--config` is for this command only: the process's KESTREL_CONFIG stays as it was, so
    whatever runs next in the same process (a CliRunner, a flow) reads its own settings."""
    from kestrel.config.settings import CONFIG_ENV

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    config = tmp_path / "kestrel.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    out = tmp_path / "recordings.jsonl"
    result = CliRunner().invoke(
        app, ["backtest", "recordings", "--out", str(out), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert CONFIG_ENV not in os.environ
