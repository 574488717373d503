"""Today's profiles (SWING / INTRADAY / SCALP x CONSERVATIVE / AGGRESSIVE, plus the config's
custom ones) as built-in strategies of the plugin interface.

`ProfileStrategy` is one class for all of them: the profile carries the indicator lengths,
thresholds and levels, the rules are `technical_signal` - the very function the live
technical analyst calls - so a built-in's decisions are the live pipeline's decisions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kestrel.models import Action, Signal
from kestrel.strategy.plugin import (
    Row,
    Strategy,
    StrategyError,
    StrategyIdentity,
    strategy_identity,
)
from kestrel.strategy.profiles import BUILTIN_PROFILES, StrategyProfile

if TYPE_CHECKING:
    import pandas as pd

    from kestrel.analysis.base import Analyst
    from kestrel.strategy.settings import AnalysisSettings

BUILTIN_VERSION = "1.0.0"


class ProfileParams(BaseModel):
    """The tunable part of a profile; defaults are SWING/CONSERVATIVE's, replaced by each
    profile's own values when a built-in is built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rsi_length: int = Field(default=14, ge=2, le=100)
    ema_fast: int = Field(default=9, ge=2, le=200)
    ema_slow: int = Field(default=21, ge=3, le=400)
    sma_fast: int = Field(default=20, ge=2, le=200)
    sma_slow: int = Field(default=50, ge=3, le=400)
    rsi_overbought: float = Field(default=70.0, gt=50, lt=100)
    rsi_oversold: float = Field(default=30.0, gt=0, lt=50)
    min_volume_ratio: float = Field(default=1.2, gt=0, le=10)


_INDICATOR_PARAMS = ("rsi_length", "ema_fast", "ema_slow", "sma_fast", "sma_slow")
_THRESHOLD_PARAMS = ("rsi_overbought", "rsi_oversold", "min_volume_ratio")


def _params_of(profile: StrategyProfile) -> dict[str, Any]:
    spec, t = profile.indicators, profile.thresholds
    return {
        **{name: getattr(spec, name) for name in _INDICATOR_PARAMS},
        **{name: getattr(t, name) for name in _THRESHOLD_PARAMS},
    }


def _apply(profile: StrategyProfile, params: BaseModel) -> StrategyProfile:
    values = params.model_dump()
    data = profile.model_dump(mode="python")
    data["indicators"].update({k: values[k] for k in _INDICATOR_PARAMS})
    data["thresholds"].update({k: values[k] for k in _THRESHOLD_PARAMS})
    try:
        return StrategyProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise StrategyError(f"strategy {profile.name}: bad parameters: {problems}") from None


class ProfileStrategy(Strategy):
    """A strategy profile as a plugin: pandas-ta indicators + the technical analyst's rule."""

    name = "profile"
    version = BUILTIN_VERSION
    description = "a built-in strategy profile"
    Params = ProfileParams
    code_modules = (
        "kestrel.analysis.indicators",
        "kestrel.analysis.technical",
        "kestrel.strategy.profiles",
    )

    def __init__(
        self,
        profile: StrategyProfile | str = "SWING/CONSERVATIVE",
        params: BaseModel | Mapping[str, Any] | None = None,
    ) -> None:
        base = BUILTIN_PROFILES[profile] if isinstance(profile, str) else profile
        given = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
        super().__init__({**_params_of(base), **given})
        self._profile = _apply(base, self.params) if given else base
        self.name = self._profile.name
        self.timeframe = self._profile.timeframe
        self.description = (
            f"{self._profile.style.value.lower()} style, "
            f"{self._profile.temperament.value.lower()} temperament"
        )

    @property
    def warmup(self) -> int:
        return self._profile.indicators.warmup

    def profile(self) -> StrategyProfile:
        return self._profile

    def indicators(self, candles: pd.DataFrame) -> pd.DataFrame:
        from kestrel.analysis.indicators import compute_indicators

        return compute_indicators(candles, self._profile.indicators)

    def _rule(self, prev: Row, last: Row) -> Signal:
        from kestrel.analysis.technical import NEEDED, technical_signal

        if any(math.isnan(row[c]) for row in (prev, last) for c in NEEDED):
            return Signal(
                action=Action.HOLD,
                confidence=0.0,
                reasoning="indicators warming up",
                analyst="technical",
            )
        return technical_signal(prev, last, self._profile, "technical")

    def entry(self, prev: Row, last: Row) -> Signal | None:
        signal = self._rule(prev, last)
        return signal if signal.action is Action.BUY else None

    def exit(self, prev: Row, last: Row) -> Signal | None:
        signal = self._rule(prev, last)
        return signal if signal.action is Action.SELL else None

    def signal(self, indicators: pd.DataFrame, row: int = -1) -> Signal:
        """The technical analyst's verdict on this row: one rule call (entry and exit are the
        same rule seen from two sides)."""
        position = row if row >= 0 else len(indicators) + row
        if position < 1:
            return Signal(
                action=Action.HOLD, confidence=0.0, reasoning="warming up", analyst="technical"
            )
        frame = indicators.iloc[position - 1 : position + 1]
        prev, last = ({str(k): float(v) for k, v in frame.iloc[i].items()} for i in (0, 1))
        return self._rule(prev, last)

    def analysts(self, settings: AnalysisSettings | None = None) -> list[tuple[Analyst, float]]:
        """The live panel of the settings (technical, LLM, sentiment), as the cycle builds it."""
        from kestrel.analysis.engine import build_analyst
        from kestrel.strategy.settings import AnalysisSettings

        settings = settings or AnalysisSettings()
        return [(build_analyst(spec, settings), spec.weight) for spec in settings.panel()]

    def identity_params(self) -> dict[str, Any]:
        return self._profile.model_dump(mode="json")


def builtin_strategies() -> dict[str, ProfileStrategy]:
    """The six built-in profiles as strategies, by name."""
    return {name: ProfileStrategy(profile) for name, profile in BUILTIN_PROFILES.items()}


@functools.lru_cache(maxsize=256)
def profile_identity(profile: StrategyProfile) -> StrategyIdentity:
    """The identity of the strategy a profile runs (a built-in, possibly config-patched, or a
    plugin): what a live decision records."""
    if profile.plugin is not None:
        from kestrel.strategy.loader import strategy_for

        return strategy_identity(strategy_for(profile))
    return strategy_identity(ProfileStrategy(profile))
