"""`--strategy` picks a built-in or a plugin for every symbol, and every result records the
strategy's identity (name@version#hash of its code and parameters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from kestrel.backtest import run_backtest
from kestrel.backtest.storage import list_results
from kestrel.errors import ConfigError
from kestrel.strategy.builtin import profile_identity
from kestrel.strategy.loader import load_strategy
from kestrel.strategy.plugin import strategy_identity
from kestrel.strategy.profiles import BUILTIN_PROFILES
from tests.backtest.helpers import btc_settings, sine_folder, spec
from tests.backtest.test_precomputed import outcome

PLUGIN = "tests.strategy.leaky:Momentum"


def test_results_record_the_identity_of_the_chosen_strategy(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=40)
    settings = btc_settings(tmp_path / "data")
    builtin = run_backtest(settings, spec(folder, label="builtin"), charts=False)
    expected = profile_identity(BUILTIN_PROFILES["SCALP/AGGRESSIVE"]).ref
    assert builtin.result.strategy_ids == {"ETH/BTC": expected}
    plugin = run_backtest(settings, spec(folder, strategy=PLUGIN), charts=False)
    ref = strategy_identity(load_strategy(PLUGIN)).ref
    assert ref.startswith("momentum@") and plugin.result.strategy_ids == {"ETH/BTC": ref}
    assert plugin.folder is not None
    stored = json.loads((plugin.folder / "result.json").read_text())
    assert stored["strategy_ids"] == {"ETH/BTC": ref}
    assert stored["spec"]["strategy"] == PLUGIN


def test_a_plugin_backtests_alike_precomputed_and_step_by_step(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=130)
    settings = btc_settings(tmp_path / "data")
    fast_run, fast = outcome(settings, folder, strategy=PLUGIN)
    _, plain = outcome(settings, folder, strategy=PLUGIN, precompute=False, full_history=True)
    assert fast_run.indicators is not None and fast_run.indicators.misses == 0
    assert fast_run.plans[0].profile.plugin == PLUGIN
    assert len(fast["events"]) >= 100 and not fast["errors"]  # a decision per cycle
    assert fast == plain


def test_cli_strategy_option_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sine_folder(tmp_path, steps=30)
    config = tmp_path / "kestrel.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[watchlist]]\nsymbol = "ETH/BTC"\ntimeframe = "5m"\n'
        '[paper]\nquote_currency = "BTC"\nstarting_balance = 1\n'
        "[trading.gates]\ndaily_loss_limit = false\n"
    )
    monkeypatch.delenv("KESTREL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    args = ["backtest", "run", "--config", str(config), "--data", str(folder), "--warmup", "100"]
    ran = runner.invoke(app, [*args, "--strategy", PLUGIN, "--no-charts"])
    assert ran.exit_code == 0, ran.output
    ref = strategy_identity(load_strategy(PLUGIN)).ref
    assert f"strategy identity: ETH/BTC {ref}" in ran.output
    (stored,) = list_results(tmp_path / "data")
    shown = runner.invoke(
        app, ["backtest", "show", stored.id, "--results-dir", str(tmp_path / "data")]
    )
    assert shown.exit_code == 0 and ref in shown.output
    bad = runner.invoke(app, [*args, "--strategy", "tests.strategy.nowhere:X", "--no-charts"])
    assert bad.exit_code != 0 and "tests.strategy.nowhere" in bad.output
    assert len(list_results(tmp_path / "data")) == 1


def test_an_unknown_strategy_is_named(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=10)
    with pytest.raises(ConfigError, match="NOPE/NOPE"):
        run_backtest(btc_settings(tmp_path / "data"), spec(folder, strategy="NOPE/NOPE"))
