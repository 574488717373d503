"""The strategy plugin interface: what a strategy is, to Kestrel.

A strategy is a subclass of `Strategy` with:

- `name`, `version`, `timeframe`, `description`: who it is and the candles it is designed for;
- `Params`: a pydantic model, its declared parameter space. Every int/float field needs a lower
  AND an upper bound (`Field(ge=.., le=..)`) and every field a default, so an optimiser or a UI
  can explore it without guessing; bool and Literal fields are choices;
- `indicators(candles)`: one column per value, aligned to the candle frame's rows. It must be
  CAUSAL: row i may only use candles 0..i (`kestrel strategy check` proves it on real data);
- `entry(prev, last)` / `exit(prev, last)`: the rules, on two consecutive indicator rows,
  returning a BUY / SELL Signal or None;
- `warmup`: candles needed before the rules may fire;
- `profile()`: the protective levels (stop-loss, take-profit, trailing) the risk gates size
  with: a `StrategyProfile`, so risk, execution and the monitor need not know about plugins;
- `analysts(settings)`: the voting panel; by default the strategy's own rules.

Why two rows and not the whole frame: a rule that only sees `prev` and `last` cannot peek at
the future, and a backtest can compute the indicators once and slice them by position.

`strategy_identity(strategy)` is the name, version and a hash of the code and parameters,
recorded on decisions and backtest results, so a result says exactly what produced it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import math
import sys
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError

from kestrel.errors import ConfigError
from kestrel.models import Action, Signal
from kestrel.models.market import TIMEFRAME_SECONDS
from kestrel.strategy.profiles import BUILTIN_PROFILES, FALLBACK_PROFILE, StrategyProfile

if TYPE_CHECKING:
    import pandas as pd

    from kestrel.analysis.base import Analyst
    from kestrel.strategy.settings import AnalysisSettings

Row = Mapping[str, float]
ParamKind = Literal["int", "float", "bool", "choice"]


class StrategyError(ConfigError):
    """A strategy that cannot be loaded or is not a valid plugin; the message says what to fix."""


class NoParams(BaseModel):
    """The parameter space of a strategy without parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(BaseModel):
    """One declared parameter: its type, default and bounds (or choices)."""

    name: str
    kind: ParamKind
    default: Any
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None
    description: str = ""

    def describe(self) -> str:
        if self.kind in ("int", "float"):
            return f"{self.name}: {self.kind} in [{self.low:g}, {self.high:g}] = {self.default}"
        if self.kind == "choice":
            return f"{self.name}: one of {self.choices} = {self.default!r}"
        return f"{self.name}: bool = {self.default}"


class StrategyIdentity(BaseModel):
    """What produced a decision: recorded on it as `ref` (name@version#hash)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    code_hash: str
    params_hash: str
    hash: str
    params: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}#{self.hash}"


class Strategy(ABC):
    """Base class of every strategy; see the module docstring for the contract."""

    name: str = ""
    version: str = "0.1.0"
    timeframe: str = "1h"
    description: str = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    # Modules besides the class's own whose source is part of the code hash (shared helpers).
    code_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: BaseModel | Mapping[str, Any] | None = None) -> None:
        check_strategy_class(type(self))
        raw = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
        try:
            self.params: BaseModel = self.Params.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise StrategyError(f"strategy {self.name}: bad parameters: {problems}") from None

    # -- the contract -----------------------------------------------------------------------

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Candles needed before `entry` / `exit` may fire."""

    @abstractmethod
    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Numeric indicator columns for `candles` (columns timestamp, open, high, low, close,
        volume), same index; row i uses candles 0..i only. Every analysis stores the last row's
        values, so name the columns for a reader."""

    @abstractmethod
    def entry(self, prev: Row, last: Row) -> Signal | None:
        """A BUY Signal when the rules say enter on `last`, else None."""

    @abstractmethod
    def exit(self, prev: Row, last: Row) -> Signal | None:
        """A SELL Signal when the rules say leave on `last`, else None."""

    def profile(self) -> StrategyProfile:
        """Protective levels and timeframe; default: SWING/CONSERVATIVE's levels."""
        base = BUILTIN_PROFILES[FALLBACK_PROFILE]
        return base.model_copy(update={"name": self.name, "timeframe": self.timeframe})

    def analysts(self, settings: AnalysisSettings | None = None) -> list[tuple[Analyst, float]]:
        """The voting panel (analyst, weight); default: this strategy's rules alone."""
        return [(StrategyAnalyst(self), 1.0)]

    def identity_params(self) -> dict[str, Any]:
        """Everything besides the code that changes decisions (hashed into the identity)."""
        return self.params.model_dump(mode="json")

    # -- derived ----------------------------------------------------------------------------

    def signal(self, indicators: pd.DataFrame, row: int = -1) -> Signal:
        """The rules on row `row` (and the one before it) of a precomputed indicator frame.

        Positional, so a backtest can compute `indicators` once for the whole series and ask
        for any row: the lookahead check proves that equals computing on the data up to it."""
        position = row if row >= 0 else len(indicators) + row
        if position < 1 or position < self.warmup - 1:
            return _hold(self.name, f"warming up: {position + 1} of {self.warmup} candles")
        frame = indicators.iloc[position - 1 : position + 1]
        prev, last = ({str(k): float(v) for k, v in frame.iloc[i].items()} for i in (0, 1))
        exit_signal = self.exit(prev, last)
        if exit_signal is not None:
            return exit_signal
        entry_signal = self.entry(prev, last)
        if entry_signal is not None:
            return entry_signal
        return _hold(self.name, "no entry or exit rule fired")


def _hold(analyst: str, why: str) -> Signal:
    return Signal(action=Action.HOLD, confidence=0.0, reasoning=why, analyst=analyst or "strategy")


class StrategyAnalyst:
    """A strategy's rules as an analyst of the panel: votes `strategy.signal` on the last row
    of the indicators the engine computed with `strategy.indicators`."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.name = strategy.name

    def judge(self, data: Any) -> Signal:
        return self.strategy.signal(data.frame())


# -- the parameter space ------------------------------------------------------------------


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None]:
    low = high = None
    for item in metadata:
        for attr in ("ge", "gt"):
            if isinstance(item, annotated_types.Ge | annotated_types.Gt) and hasattr(item, attr):
                low = float(getattr(item, attr))
        for attr in ("le", "lt"):
            if isinstance(item, annotated_types.Le | annotated_types.Lt) and hasattr(item, attr):
                high = float(getattr(item, attr))
    return low, high


def parameter_space(params: type[BaseModel]) -> list[ParamSpec]:
    """The declared parameters of a `Params` model; StrategyError names a field without a
    default, a bound or a supported type."""
    specs: list[ParamSpec] = []
    for name, field in params.model_fields.items():
        where = f"{params.__qualname__}.{name}"
        if field.is_required():
            raise StrategyError(f"{where}: every parameter needs a default")
        annotation = field.annotation
        if annotation is bool:
            specs.append(ParamSpec(name=name, kind="bool", default=field.default))
            continue
        if typing.get_origin(annotation) is Literal:
            choices = list(typing.get_args(annotation))
            specs.append(
                ParamSpec(name=name, kind="choice", default=field.default, choices=choices)
            )
            continue
        if annotation not in (int, float):
            raise StrategyError(f"{where}: parameters are int, float, bool or Literal[...]")
        low, high = _bounds(field.metadata)
        if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
            raise StrategyError(
                f"{where}: a numeric parameter needs both bounds, e.g. Field(default, ge=2, le=50)"
            )
        kind: ParamKind = "int" if annotation is int else "float"
        specs.append(
            ParamSpec(
                name=name,
                kind=kind,
                default=field.default,
                low=low,
                high=high,
                description=field.description or "",
            )
        )
    return specs


@functools.cache
def check_strategy_class(cls: type[Strategy]) -> None:
    """A plugin class is usable: a name, a known timeframe, a declared parameter space."""
    if not isinstance(cls.name, str) or not cls.name.strip():
        raise StrategyError(f'{cls.__module__}.{cls.__qualname__}: set `name = "..."`')
    if cls.timeframe not in TIMEFRAME_SECONDS:
        raise StrategyError(
            f"strategy {cls.name}: timeframe {cls.timeframe!r} is not one of "
            f"{', '.join(TIMEFRAME_SECONDS)}"
        )
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
        raise StrategyError(f"strategy {cls.name}: Params must be a pydantic BaseModel class")
    parameter_space(cls.Params)


# -- identity -----------------------------------------------------------------------------


def _module_source(name: str) -> str:
    module: types.ModuleType = sys.modules.get(name) or importlib.import_module(name)
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):  # no source file (a zip without .py, the REPL)
        return name


@functools.cache
def code_hash(cls: type[Strategy]) -> str:
    """sha256 of the source of the class's module and its `code_modules` (12 hex)."""
    digest = hashlib.sha256()
    for name in (cls.__module__, *cls.code_modules):
        digest.update(name.encode() + b"\0" + _module_source(name).encode() + b"\0")
    return digest.hexdigest()[:12]


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def strategy_identity(strategy: Strategy) -> StrategyIdentity:
    """Name, version and a hash of code + parameters: equal hashes, equal decisions."""
    params = strategy.identity_params()
    code, params_hash = code_hash(type(strategy)), _digest(params)
    return StrategyIdentity(
        name=strategy.name,
        version=strategy.version,
        code_hash=code,
        params_hash=params_hash,
        hash=_digest([strategy.name, strategy.version, code, params_hash]),
        params=params,
    )
