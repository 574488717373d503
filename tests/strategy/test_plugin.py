"""The strategy plugin interface: built-ins equal the live analysis, parameter spaces, identity,
loading by name / import path / entry point, `kestrel strategy new|list`, decisions record it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from cli import app
from kestrel.analysis.engine import analyze
from kestrel.analysis.frame import candles_to_frame
from kestrel.mode import TradingMode
from kestrel.models import Action, CandleSeries
from kestrel.strategy.builtin import ProfileStrategy, builtin_strategies, profile_identity
from kestrel.strategy.loader import list_strategies, load_strategy
from kestrel.strategy.plugin import StrategyError, parameter_space, strategy_identity
from kestrel.strategy.profiles import BUILTIN_PROFILES, build_profiles
from kestrel.trading.decision import decide
from tests.strategy.conftest import random_walk
from tests.strategy.leaky import Momentum, PeekStrategy


def test_builtins_decide_exactly_like_the_live_analysis() -> None:
    seen: set[Action] = set()
    for name, strategy in builtin_strategies().items():
        series = random_walk(420, seed=3, timeframe=BUILTIN_PROFILES[name].timeframe)
        frame = strategy.indicators(candles_to_frame(series))
        for end in range(strategy.warmup + 5, len(series.candles), 23):
            cut = CandleSeries(
                symbol="BTC/USDT", timeframe=series.timeframe, candles=series.candles[:end],
                source="walk",
            )  # fmt: skip
            live = analyze(cut, BUILTIN_PROFILES[name]).signal
            mine = strategy.signal(frame, end - 1)
            assert (mine.action, mine.confidence, mine.reasoning) == (
                live.action,
                live.confidence,
                live.reasoning,
            ), (name, end)
            seen.add(mine.action)
    assert seen == {Action.BUY, Action.SELL, Action.HOLD}


def test_parameter_space_has_types_and_bounds() -> None:
    space = {p.name: p for p in parameter_space(ProfileStrategy.Params)}
    assert (space["ema_fast"].kind, space["ema_fast"].low, space["ema_fast"].high) == (
        "int",
        2,
        200,
    )
    assert space["rsi_overbought"].kind == "float"
    peek = {p.name: p for p in parameter_space(PeekStrategy.Params)}
    assert peek["side"].choices == ["long", "both"] and peek["enabled"].kind == "bool"


def test_an_unbounded_parameter_is_refused() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(frozen=True)
        length: int = Field(default=14, ge=2)

    with pytest.raises(StrategyError, match=r"Loose\.length: a numeric parameter needs both"):
        parameter_space(Loose)

    class Bad(Momentum):
        Params = Loose

    with pytest.raises(StrategyError, match="needs both bounds"):
        Bad()


def test_parameters_are_validated_and_change_the_strategy() -> None:
    tuned = ProfileStrategy("SWING/CONSERVATIVE", {"ema_fast": 5, "ema_slow": 30})
    assert tuned.profile().indicators.ema_fast == 5
    with pytest.raises(StrategyError, match="ema_fast: Input should be less than or equal to 200"):
        ProfileStrategy("SWING/CONSERVATIVE", {"ema_fast": 500})
    with pytest.raises(StrategyError, match=r"ema_fast .* must be < ema_slow"):
        ProfileStrategy("SWING/CONSERVATIVE", {"ema_fast": 40})


def test_identity_is_name_version_and_a_hash_of_code_and_parameters() -> None:
    base = strategy_identity(ProfileStrategy("SWING/CONSERVATIVE"))
    again = strategy_identity(ProfileStrategy("SWING/CONSERVATIVE"))
    tuned = strategy_identity(ProfileStrategy("SWING/CONSERVATIVE", {"ema_fast": 5}))
    other = strategy_identity(ProfileStrategy("SCALP/AGGRESSIVE"))
    assert base == again
    assert base.ref.startswith("SWING/CONSERVATIVE@1.0.0#") and len(base.hash) == 12
    assert tuned.code_hash == base.code_hash and tuned.hash != base.hash
    assert other.hash != base.hash
    peek = strategy_identity(PeekStrategy())
    assert peek.code_hash != strategy_identity(Momentum()).code_hash or peek.hash != base.hash
    assert strategy_identity(PeekStrategy({"threshold": 0.5})).hash != peek.hash


def test_load_by_builtin_spelling_and_import_path() -> None:
    assert load_strategy("scalp").name == "SCALP/CONSERVATIVE"
    loaded = load_strategy("tests.strategy.leaky:Momentum")
    assert isinstance(loaded, Momentum) and loaded.timeframe == "5m"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("tests.strategy.nowhere:X", "cannot import tests.strategy.nowhere: ModuleNotFoundError"),
        ("tests.strategy.leaky:Missing", "tests.strategy.leaky has no Missing"),
        ("tests.strategy.leaky:NotAStrategy", "not a subclass of kestrel.strategy.plugin"),
        ("moon", "--strategy 'moon': no such strategy; known: SWING/CONSERVATIVE"),
        ("tests.strategy.leaky:", "an import path looks like package.module:Class"),
    ],
)
def test_bad_strategy_refs_say_what_failed(ref: str, message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        load_strategy(ref)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    """A package installed the way pip does it: a module and a dist-info with entry points."""
    (tmp_path / "acme_strats.py").write_text(
        "from tests.strategy.leaky import Momentum\n\n\nclass Acme(Momentum):\n"
        '    name = "acme"\n    version = "2.0.0"\n'
    )
    info = tmp_path / "acme_strats-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strats\nVersion: 2.0.0\n")
    (info / "entry_points.txt").write_text(
        "[kestrel.strategies]\nacme = acme_strats:Acme\nbroken = acme_strats:Nope\n"
    )
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("acme_strats", None)


def test_entry_point_strategies_load_and_list(installed: Path) -> None:
    assert load_strategy("acme").name == "acme"
    infos, problems = list_strategies()
    rows = {i.name: i for i in infos}
    assert rows["acme"].origin == "installed" and rows["acme"].identity.startswith("acme@2.0.0#")
    assert {n for n, i in rows.items() if i.origin == "built-in"} == set(BUILTIN_PROFILES)
    assert problems == ["entry point 'broken' (acme_strats:Nope) fails to import: AttributeError: "
                        "module 'acme_strats' has no attribute 'Nope'"]  # fmt: skip
    result = CliRunner().invoke(app, ["strategy", "list"])
    assert result.exit_code == 0, result.output
    assert "acme" in result.output and "SCALP/AGGRESSIVE" in result.output


def test_strategy_new_writes_a_skeleton_whose_test_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["strategy", "new", "my_trend", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "my_trend.py").is_file() and (tmp_path / "test_my_trend.py").is_file()
    again = CliRunner().invoke(app, ["strategy", "new", "my_trend", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "exists" in again.output
    bad = CliRunner().invoke(app, ["strategy", "new", "9lives", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "must be a Python identifier" in bad.output
    sys.path.insert(0, str(tmp_path))
    try:
        tests = importlib.import_module("test_my_trend")
        for name in dir(tests):
            if name.startswith("test_"):
                getattr(tests, name)()
    finally:
        sys.path.remove(str(tmp_path))
        for module in ("my_trend", "test_my_trend"):
            sys.modules.pop(module, None)


def test_decisions_record_the_strategy_identity() -> None:
    from kestrel.risk import assess
    from tests.risk.helpers import MARKET, context

    profile = build_profiles({"SWING/CONSERVATIVE": {"indicators": {"ema_fast": 7}}})[
        "SWING/CONSERVATIVE"
    ]
    ctx = context(profile=profile)
    decision = decide(
        cycle="c",
        mode=TradingMode.DEMO,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=assess(ctx),
        market=MARKET,
        profile=profile,
    )
    assert decision.strategy == profile_identity(profile).ref
    assert decision.strategy != profile_identity(BUILTIN_PROFILES["SWING/CONSERVATIVE"]).ref
