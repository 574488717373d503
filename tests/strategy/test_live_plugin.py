"""A plugin strategy named in the settings runs through the live cycle's own functions:
resolve -> prepare / analyze (SOLO and the SWARM steps) -> decide, and decisions record it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError
from kestrel.mode import TradingMode
from kestrel.models import Action
from kestrel.strategy.loader import load_strategy
from kestrel.strategy.plugin import strategy_identity
from kestrel.strategy.resolve import resolve_plans
from kestrel.trading.cycle import (
    analyze_candles,
    conclude_analysis,
    consult_analyst,
    prepare_analysis,
)
from kestrel.trading.decision import decide
from tests.strategy.conftest import random_walk

REF = "tests.strategy.leaky:Momentum"


def test_a_plugin_in_the_settings_drives_the_live_analysis() -> None:
    settings = load_settings(
        watchlist=[{"symbol": "BTC/USDT", "timeframe": "1h"}],
        trading={"default_strategy": REF, "timeframe_source": "profile"},
    )
    [plan] = resolve_plans(settings)
    assert (plan.profile.plugin, plan.profile.name, plan.item.timeframe) == (REF, "momentum", "5m")
    plugin = load_strategy(REF)
    series = random_walk(80, seed=4, timeframe="5m")
    seen = set()
    for end in range(10, 80, 3):
        cut = series.model_copy(update={"candles": series.candles[:end]})
        expected = plugin.signal(plugin.indicators(prepare_analysis(cut, plan.profile).frame()))
        solo = analyze_candles(cut, plan.profile, settings.trading.analysis)
        data = prepare_analysis(cut, plan.profile)
        votes = [
            consult_analyst(settings.trading.analysis, spec, data)
            for spec in settings.trading.analysis.panel()
        ]
        swarm = conclude_analysis(settings.trading.analysis, data, votes)
        for result in (solo, swarm):
            assert (result.signal.action, result.signal.confidence) == (
                expected.action,
                expected.confidence,
            )
        assert "change" in solo.indicators
        seen.add(solo.signal.action)
    assert {Action.BUY, Action.SELL} <= seen


def test_live_decisions_record_the_plugin_identity() -> None:
    from kestrel.risk import assess
    from tests.risk.helpers import MARKET, context

    settings = load_settings(trading={"default_strategy": REF})
    [plan] = resolve_plans(settings.model_copy(update={"watchlist": settings.watchlist[:1]}))
    ctx = context(profile=plan.profile)
    decision = decide(
        cycle="c",
        mode=TradingMode.DEMO,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=assess(ctx),
        market=MARKET,
        profile=plan.profile,
    )
    assert decision.strategy == strategy_identity(load_strategy(REF)).ref
    assert decision.strategy.startswith("momentum@1.2.0#")


def test_a_plugin_that_fails_to_import_stops_before_trading() -> None:
    settings = load_settings(trading={"default_strategy": "tests.strategy.nowhere:X"})
    with pytest.raises(ConfigError, match=r"trading.default_strategy: --strategy .* cannot import"):
        resolve_plans(settings)
    with pytest.raises(ConfigError, match="unknown strategy 'moon'"):
        load_settings(trading={"default_strategy": "moon"})


def test_kestrel_strategy_shows_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    result = CliRunner().invoke(
        app,
        ["strategy"],
        env={
            "KESTREL_DATA_DIR": str(tmp_path),
            "KESTREL_CONFIG": str(tmp_path / "empty.toml"),
            "KESTREL_TRADING__DEFAULT_STRATEGY": REF,
            "KESTREL_WATCHLIST": '[{"symbol": "BTC/USDT"}]',
        },
    )
    assert result.exit_code == 0, result.output
    assert f"BTC/USDT: plugin {REF} (momentum) from default" in result.output
