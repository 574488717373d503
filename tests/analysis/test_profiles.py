"""Strategy profiles: names, the resolution order per symbol, custom profiles from the
config, and the CONSERVATIVE / AGGRESSIVE contract on stop and target distances."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError
from kestrel.models import AnalysisResult, MarketSpec, Signal
from kestrel.models.analysis import Action
from kestrel.risk.levels import protective_levels
from kestrel.strategy.profiles import (
    BUILTIN_PROFILES,
    STRATEGY_PRESETS,
    Style,
    Temperament,
    canonical_name,
)
from kestrel.strategy.resolve import resolve_plan, resolve_plans


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("SWING/CONSERVATIVE", "SWING/CONSERVATIVE"),
        ("scalp-aggressive", "SCALP/AGGRESSIVE"),
        ("intraday aggressive", "INTRADAY/AGGRESSIVE"),
        ("AGGRESSIVE/SCALP", "SCALP/AGGRESSIVE"),
        ("SCALPING", "SCALP/CONSERVATIVE"),
        ("swing", "SWING/CONSERVATIVE"),
        ("aggressive", "SWING/AGGRESSIVE"),
        ("day_trading", None),
        ("SWING/SWING", None),
        ("", None),
        ("YOLO", None),
    ],
)
def test_names(name: str, canonical: str | None) -> None:
    assert canonical_name(name) == canonical


def test_every_published_preset_resolves() -> None:
    assert all(canonical_name(name) for name in STRATEGY_PRESETS)
    assert set(BUILTIN_PROFILES) <= set(STRATEGY_PRESETS)


def settings(**trading: Any) -> Any:
    return load_settings(
        watchlist=[
            {"symbol": "BTC/USDT", "strategy": "scalp"},
            {"symbol": "ETH/USDT"},
            {"symbol": "SOL/USDT"},
        ],
        trading=trading,
    )


@pytest.mark.parametrize(
    ("trading", "expected"),
    [
        (
            {},
            {
                "BTC/USDT": ("SCALP/CONSERVATIVE", "watchlist"),
                "ETH/USDT": ("SWING/CONSERVATIVE", "fallback"),
                "SOL/USDT": ("SWING/CONSERVATIVE", "fallback"),
            },
        ),
        (
            {"default_strategy": "INTRADAY/AGGRESSIVE"},
            {
                "BTC/USDT": ("SCALP/CONSERVATIVE", "watchlist"),
                "ETH/USDT": ("INTRADAY/AGGRESSIVE", "default"),
                "SOL/USDT": ("INTRADAY/AGGRESSIVE", "default"),
            },
        ),
        (
            {
                "default_strategy": "INTRADAY/AGGRESSIVE",
                "presets": {"eth/usdt": "swing-aggressive", "BTC/USDT": "INTRADAY"},
            },
            {
                "BTC/USDT": ("SCALP/CONSERVATIVE", "watchlist"),  # the item's own wins
                "ETH/USDT": ("SWING/AGGRESSIVE", "preset"),
                "SOL/USDT": ("INTRADAY/AGGRESSIVE", "default"),
            },
        ),
    ],
)
def test_resolution_order(trading: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    plans = resolve_plans(settings(**trading))
    assert {p.symbol: (p.profile.name, p.source) for p in plans} == expected


def test_unknown_names_fail_at_load_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"trading\.presets: .*BTC/USDT: unknown strategy 'YOLO'"):
        settings(presets={"BTC/USDT": "YOLO"})
    with pytest.raises(ConfigError, match=r"trading\.default_strategy: got 'nope'"):
        settings(default_strategy="nope")
    broken = load_settings(watchlist=[{"symbol": "BTC/USDT", "strategy": "MOON"}])
    with pytest.raises(ConfigError, match=r"watchlist\[BTC/USDT\]\.strategy"):
        resolve_plans(broken)


def test_custom_profiles_patch_builtins_or_extend_them() -> None:
    s = settings(
        profiles={
            "SCALP/CONSERVATIVE": {
                "stop_loss": {"value": "0.3"},
                "thresholds": {"rsi_oversold": 20},
            },
            "MEAN-REVERT": {"base": "scalp/aggressive", "timeframe": "15m", "min_confidence": 0.7},
        },
        presets={"SOL/USDT": "mean-revert"},
    )
    btc = resolve_plan(s, s.watch("BTC/USDT")).profile
    assert btc.stop_loss.value == Decimal("0.3") and btc.stop_loss.kind == "percent"
    assert btc.thresholds.rsi_oversold == 20 and btc.thresholds.rsi_overbought == 75  # kept
    sol = resolve_plan(s, s.watch("SOL/USDT")).profile
    assert (sol.name, sol.timeframe, sol.min_confidence) == ("MEAN-REVERT", "15m", 0.7)
    with pytest.raises(ConfigError, match="base"):
        settings(profiles={"NEW": {"timeframe": "1h"}})
    with pytest.raises(ConfigError, match="ema_fast"):
        settings(profiles={"SWING": {"indicators": {"ema_fast": 30, "ema_slow": 21}}})


def test_timeframe_from_the_watchlist_or_the_profile() -> None:
    from_watchlist = resolve_plan(settings(), settings().watch("BTC/USDT"))
    assert from_watchlist.item.timeframe == "1h"
    s = settings(timeframe_source="profile")
    plans = {p.symbol: p.item.timeframe for p in resolve_plans(s)}
    assert plans == {"BTC/USDT": "5m", "ETH/USDT": "4h", "SOL/USDT": "4h"}


def test_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kestrel.toml"
    config.write_text(
        '[trading]\ndefault_strategy = "INTRADAY"\n'
        '[trading.presets]\n"ETH/USDT" = "SCALP/AGGRESSIVE"\n'
        '[trading.profiles."SWING/CONSERVATIVE".take_profit]\nkind = "percent"\nvalue = 8\n'
    )
    monkeypatch.setenv("KESTREL_CONFIG", str(config))
    s = load_settings(watchlist=[{"symbol": "BTC/USDT"}, {"symbol": "ETH/USDT"}])
    assert [p.profile.name for p in resolve_plans(s)] == [
        "INTRADAY/CONSERVATIVE",
        "SCALP/AGGRESSIVE",
    ]
    swing = s.trading.profile("swing")
    assert swing is not None and swing.take_profit.kind == "percent"


@pytest.mark.parametrize("style", list(Style))
def test_conservative_has_the_tighter_stop_and_the_wider_target(style: Style) -> None:
    conservative = BUILTIN_PROFILES[f"{style}/{Temperament.CONSERVATIVE}"]
    aggressive = BUILTIN_PROFILES[f"{style}/{Temperament.AGGRESSIVE}"]
    market = MarketSpec(
        symbol="X/USDT",
        base="X",
        quote="USDT",
        amount_step=Decimal("0.0001"),
        price_tick=Decimal("0.0001"),
    )
    price = Decimal("100")
    analysis = AnalysisResult(
        symbol="X/USDT",
        timeframe="1h",
        candle_timestamp=0,
        price=price,
        indicators={"atr": 1.5},
        signal=Signal(action=Action.BUY, confidence=0.9),
    )
    c = protective_levels(conservative, analysis, market, price)
    a = protective_levels(aggressive, analysis, market, price)
    assert c.stop_loss is not None and a.stop_loss is not None
    assert c.take_profit is not None and a.take_profit is not None
    assert price - c.stop_loss < price - a.stop_loss  # tighter stop
    assert c.take_profit - price > a.take_profit - price  # wider target
