"""`kestrel strategy new NAME`: a working strategy module and its test, to edit from there."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from kestrel.strategy.plugin import StrategyError

MODULE = '''"""{title}: a Kestrel strategy plugin (see kestrel/strategy/plugin.py for the contract).

Use it with `kestrel strategy check --strategy {module}:{cls} --data <candles>` and, once it
is installed as a package, through the `kestrel.strategies` entry-point group:

    [project.entry-points."kestrel.strategies"]
    {module} = "{module}:{cls}"
"""

from __future__ import annotations

import math

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kestrel.models import Action, Signal
from kestrel.strategy.plugin import Row, Strategy


class {cls}Params(BaseModel):
    """The parameter space: every number has bounds, every parameter a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fast: int = Field(default=9, ge=2, le=100, description="fast EMA length")
    slow: int = Field(default=21, ge=3, le=300, description="slow EMA length")
    rsi_length: int = Field(default=14, ge=2, le=100)
    rsi_exit: float = Field(default=70.0, gt=50, lt=100, description="RSI that takes profit")


class {cls}(Strategy):
    """EMA crossover entries, exits on a cross down or an overbought RSI."""

    name = "{name}"
    version = "0.1.0"
    timeframe = "1h"
    description = "EMA crossover with an RSI exit"
    Params = {cls}Params

    @property
    def p(self) -> {cls}Params:
        assert isinstance(self.params, {cls}Params)
        return self.params

    @property
    def warmup(self) -> int:
        return max(self.p.slow, self.p.rsi_length) * 3

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Causal columns only: row i uses candles 0..i (never shift(-1))."""
        close = candles["close"]
        change = close.diff()
        gain = change.clip(lower=0).ewm(alpha=1 / self.p.rsi_length, adjust=False).mean()
        loss = (-change).clip(lower=0).ewm(alpha=1 / self.p.rsi_length, adjust=False).mean()
        return pd.DataFrame(
            {{
                "close": close,
                "ema_fast": close.ewm(span=self.p.fast, adjust=False).mean(),
                "ema_slow": close.ewm(span=self.p.slow, adjust=False).mean(),
                "rsi": 100 * gain / (gain + loss),
            }},
            index=candles.index,
        )

    def entry(self, prev: Row, last: Row) -> Signal | None:
        if prev["ema_fast"] <= prev["ema_slow"] and last["ema_fast"] > last["ema_slow"]:
            return Signal(action=Action.BUY, confidence=0.7, reasoning="EMA crossed up",
                          analyst=self.name)  # fmt: skip
        return None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        if not math.isnan(last["rsi"]) and last["rsi"] >= self.p.rsi_exit:
            return Signal(action=Action.SELL, confidence=0.7, reasoning="RSI overbought",
                          analyst=self.name)  # fmt: skip
        if prev["ema_fast"] >= prev["ema_slow"] and last["ema_fast"] < last["ema_slow"]:
            return Signal(action=Action.SELL, confidence=0.6, reasoning="EMA crossed down",
                          analyst=self.name)  # fmt: skip
        return None
'''

TEST = '''"""Tests of {module}.{cls}: it loads, trades on a trending series, and passes the
lookahead check. Run: python -m pytest {test_file}"""

from __future__ import annotations

import math

from kestrel.models import Action, Candle, CandleSeries
from kestrel.strategy.check import check_strategy
from kestrel.strategy.loader import load_strategy
from kestrel.strategy.plugin import parameter_space, strategy_identity

HOUR = 3_600_000


def wave(count: int = 400) -> CandleSeries:
    candles = []
    for i in range(count):
        close = 100 + 10 * math.sin(i / 15) + i * 0.01
        candles.append(Candle(timestamp=i * HOUR, open=close, high=close + 1, low=close - 1,
                              close=close, volume=10.0))  # fmt: skip
    return CandleSeries(symbol="BTC/USDT", timeframe="1h", candles=candles, source="wave")


def test_loads_by_import_path_with_bounded_parameters() -> None:
    strategy = load_strategy("{module}:{cls}", {{"fast": 5}})
    assert strategy.name == "{name}"
    assert {{p.name for p in parameter_space(type(strategy).Params)}} >= {{"fast", "slow"}}
    assert strategy_identity(strategy).ref.startswith("{name}@0.1.0#")


def test_trades_both_ways_on_a_wave() -> None:
    from kestrel.analysis.frame import candles_to_frame

    strategy = load_strategy("{module}:{cls}")
    frame = strategy.indicators(candles_to_frame(wave()))
    actions = {{strategy.signal(frame, row).action for row in range(len(frame))}}
    assert {{Action.BUY, Action.SELL}} <= actions


def test_passes_the_lookahead_check() -> None:
    report = check_strategy(load_strategy("{module}:{cls}"), wave(), points=20, seed=1)
    assert report.ok, report.lookahead.mismatches
'''


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_\W]+", name) if part) or "My"


def write_skeleton(name: str, directory: Path) -> tuple[Path, Path]:
    """`<directory>/<name>.py` and `<directory>/test_<name>.py`; refuses to overwrite."""
    module = name.strip().lower().replace("-", "_")
    if not module.isidentifier() or keyword.iskeyword(module):
        raise StrategyError(
            f"strategy name {name!r} must be a Python identifier, e.g. my_trend (letters, "
            "digits, _; not starting with a digit)"
        )
    cls = _class_name(module) + "Strategy"
    path, test = directory / f"{module}.py", directory / f"test_{module}.py"
    for target in (path, test):
        if target.exists():
            raise StrategyError(f"{target} exists; choose another name or directory")
    values = {
        "module": module,
        "cls": cls,
        "name": module,
        "title": module.replace("_", " ").capitalize(),
        "test_file": test.name,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(MODULE.format(**values))
    test.write_text(TEST.format(**values))
    return path, test
