"""Strategy profiles: a trading style (SWING / INTRADAY / SCALP) crossed with a temperament
(CONSERVATIVE / AGGRESSIVE).

A profile is everything a symbol's analysis and protective levels depend on: the timeframe it
is designed for, the indicator parameters, the signal thresholds, the stop-loss /
take-profit distances (percent of the entry, or multiples of ATR), and an optional trailing
stop (off in the built-ins; e.g. `[trading.profiles.SWING.trailing] distance_pct = 2`).
CONSERVATIVE keeps a tighter stop and a wider target and asks for more confirmation;
AGGRESSIVE is the reverse.

Pure pydantic, no pandas: imported by the settings (to validate names) and by the CLI.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kestrel.models.market import TIMEFRAME_SECONDS


class Style(StrEnum):
    SWING = "SWING"
    INTRADAY = "INTRADAY"
    SCALP = "SCALP"


class Temperament(StrEnum):
    CONSERVATIVE = "CONSERVATIVE"
    AGGRESSIVE = "AGGRESSIVE"


FALLBACK_PROFILE = "SWING/CONSERVATIVE"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorSpec(_Frozen):
    """pandas-ta parameters of one profile. Every analysis stores the values these produce."""

    rsi_length: int = Field(default=14, ge=2)
    macd_fast: int = Field(default=12, ge=2)
    macd_slow: int = Field(default=26, ge=3)
    macd_signal: int = Field(default=9, ge=2)
    ema_fast: int = Field(default=9, ge=2)
    ema_slow: int = Field(default=21, ge=3)
    sma_fast: int = Field(default=20, ge=2)
    sma_slow: int = Field(default=50, ge=3)
    bb_length: int = Field(default=20, ge=2)
    bb_std: float = Field(default=2.0, gt=0, le=5)
    atr_length: int = Field(default=14, ge=2)
    volume_length: int = Field(default=20, ge=2)
    crossover: Literal["ema", "sma"] = Field(
        default="ema", description="which moving-average pair's crossover triggers a signal"
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> IndicatorSpec:
        for fast, slow in (
            ("macd_fast", "macd_slow"),
            ("ema_fast", "ema_slow"),
            ("sma_fast", "sma_slow"),
        ):
            if getattr(self, fast) >= getattr(self, slow):
                raise ValueError(f"{fast} ({getattr(self, fast)}) must be < {slow}")
        return self

    @property
    def warmup(self) -> int:
        """Candles needed before every indicator has a value on the last two rows (signals
        compare the last candle with the one before it)."""
        first_value_index = max(
            self.rsi_length,  # RSI needs `length` price changes
            self.macd_slow + self.macd_signal - 2,  # signal EMA over the MACD line
            self.ema_slow - 1,
            self.sma_slow - 1,
            self.bb_length - 1,
            self.atr_length,  # true range needs the previous close
            self.volume_length - 1,
        )
        return first_value_index + 2


class Distance(_Frozen):
    """A protective distance from the entry: `percent` of the price, or `atr` multiples."""

    kind: Literal["percent", "atr"]
    value: Decimal = Field(gt=0, le=100)

    def describe(self) -> str:
        return f"{self.value}%" if self.kind == "percent" else f"{self.value}xATR"


class Trailing(_Frozen):
    """A trailing stop: once the price has risen `activation_pct` % above the entry, the
    stop-loss follows the highest price since entry at `distance_pct` % below it, and only
    ever moves up (the position monitor ratchets it; a native stop order is replaced)."""

    activation_pct: Decimal = Field(
        default=Decimal("0"), ge=0, le=1000, description="profit % at which trailing starts"
    )
    distance_pct: Decimal = Field(gt=0, lt=100, description="% below the high the stop trails")

    def describe(self) -> str:
        start = f" from +{self.activation_pct}%" if self.activation_pct else ""
        return f"trailing {self.distance_pct}%{start}"


class Thresholds(_Frozen):
    """When the technical analyst calls a signal, and how much confirmation it wants."""

    rsi_overbought: float = Field(default=70.0, gt=50, lt=100)
    rsi_oversold: float = Field(default=30.0, gt=0, lt=50)
    min_volume_ratio: float = Field(
        default=1.2, gt=0, description="last volume / its average that counts as confirmation"
    )
    require_macd: bool = Field(
        default=False, description="a crossover needs the MACD histogram on its side"
    )
    require_trend: bool = Field(
        default=False, description="BUY only above the slow SMA, SELL crossovers only below"
    )
    mean_reversion: bool = Field(
        default=False, description="also trade Bollinger Band re-entries at RSI extremes"
    )
    min_spread_pct: float = Field(
        default=0.0, ge=0, description="ignore crossovers whose MA spread is below this %"
    )


class StrategyProfile(_Frozen):
    name: str
    style: Style
    temperament: Temperament
    timeframe: str = Field(description="the timeframe the profile is designed for")
    indicators: IndicatorSpec = Field(default_factory=IndicatorSpec)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    stop_loss: Distance
    take_profit: Distance
    min_stop_pct: Decimal = Field(
        default=Decimal("0.2"), gt=0, description="an ATR stop is never closer than this %"
    )
    max_stop_pct: Decimal = Field(
        default=Decimal("20"), gt=0, lt=100, description="...nor farther than this %"
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="overrides risk.min_confidence for this profile"
    )
    trailing: Trailing | None = Field(
        default=None, description="a trailing stop for this profile's positions; None: off"
    )
    plugin: str | None = Field(
        default=None,
        description="a plugin strategy (package.module:Class or an entry point) whose "
        "indicators and rules this profile runs (kestrel/strategy/plugin.py); None: built-in",
    )
    plugin_params: str = Field(default="{}", description="the plugin's parameters as JSON")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_SECONDS:
            raise ValueError(f"must be one of {', '.join(TIMEFRAME_SECONDS)}")
        return value

    @model_validator(mode="after")
    def _stop_bounds(self) -> StrategyProfile:
        if self.min_stop_pct >= self.max_stop_pct:
            raise ValueError("min_stop_pct must be < max_stop_pct")
        return self


def _pct(value: str) -> Distance:
    return Distance(kind="percent", value=Decimal(value))


def _atr(value: str) -> Distance:
    return Distance(kind="atr", value=Decimal(value))


_SCALP_INDICATORS = IndicatorSpec(
    rsi_length=7,
    macd_fast=6,
    macd_slow=13,
    macd_signal=5,
    ema_fast=5,
    ema_slow=13,
    sma_fast=10,
    sma_slow=30,
    atr_length=7,
)

BUILTIN_PROFILES: dict[str, StrategyProfile] = {
    p.name: p
    for p in (
        StrategyProfile(
            name="SWING/CONSERVATIVE",
            style=Style.SWING,
            temperament=Temperament.CONSERVATIVE,
            timeframe="4h",
            thresholds=Thresholds(require_macd=True, min_volume_ratio=1.2),
            stop_loss=_atr("1.5"),
            take_profit=_atr("4"),
        ),
        StrategyProfile(
            name="SWING/AGGRESSIVE",
            style=Style.SWING,
            temperament=Temperament.AGGRESSIVE,
            timeframe="4h",
            thresholds=Thresholds(rsi_overbought=75, rsi_oversold=25, min_volume_ratio=1.0),
            stop_loss=_atr("3"),
            take_profit=_atr("2.5"),
        ),
        StrategyProfile(
            name="INTRADAY/CONSERVATIVE",
            style=Style.INTRADAY,
            temperament=Temperament.CONSERVATIVE,
            timeframe="1h",
            thresholds=Thresholds(require_macd=True, require_trend=True, min_spread_pct=0.02),
            stop_loss=_atr("1"),
            take_profit=_atr("3"),
        ),
        StrategyProfile(
            name="INTRADAY/AGGRESSIVE",
            style=Style.INTRADAY,
            temperament=Temperament.AGGRESSIVE,
            timeframe="1h",
            thresholds=Thresholds(rsi_overbought=75, rsi_oversold=25, min_volume_ratio=1.0),
            stop_loss=_atr("2"),
            take_profit=_atr("1.5"),
        ),
        StrategyProfile(
            name="SCALP/CONSERVATIVE",
            style=Style.SCALP,
            temperament=Temperament.CONSERVATIVE,
            timeframe="5m",
            indicators=_SCALP_INDICATORS,
            thresholds=Thresholds(
                rsi_overbought=75, rsi_oversold=25, require_macd=True, mean_reversion=True
            ),
            stop_loss=_pct("0.4"),
            take_profit=_pct("1.0"),
            min_stop_pct=Decimal("0.1"),
        ),
        StrategyProfile(
            name="SCALP/AGGRESSIVE",
            style=Style.SCALP,
            temperament=Temperament.AGGRESSIVE,
            timeframe="5m",
            indicators=_SCALP_INDICATORS,
            thresholds=Thresholds(
                rsi_overbought=80, rsi_oversold=20, min_volume_ratio=1.0, mean_reversion=True
            ),
            stop_loss=_pct("0.8"),
            take_profit=_pct("0.6"),
            min_stop_pct=Decimal("0.1"),
        ),
    )
}

_STYLE_ALIASES = {
    "SWING": Style.SWING,
    "INTRADAY": Style.INTRADAY,
    "DAY": Style.INTRADAY,
    "DAYTRADING": Style.INTRADAY,
    "SCALP": Style.SCALP,
    "SCALPING": Style.SCALP,
}
_TEMPERAMENT_ALIASES = {
    "CONSERVATIVE": Temperament.CONSERVATIVE,
    "SAFE": Temperament.CONSERVATIVE,
    "AGGRESSIVE": Temperament.AGGRESSIVE,
}

# Every name `canonical_name` accepts for a built-in profile; kestrel.operator.live validates
# live strategy changes against this list.
STRATEGY_PRESETS: tuple[str, ...] = (
    *BUILTIN_PROFILES,
    *(style.value for style in Style),
    *(temperament.value for temperament in Temperament),
    "SCALPING",
)


def canonical_name(name: str) -> str | None:
    """'swing-aggressive', 'SCALPING', 'conservative' -> 'SWING/AGGRESSIVE', 'SCALP/
    CONSERVATIVE', 'SWING/CONSERVATIVE'. A lone style is CONSERVATIVE; a lone temperament is
    SWING. None when the name is no built-in combination."""
    parts = [p for p in re.split(r"[\s/_\-+]+", name.strip().upper()) if p]
    style: Style | None = None
    temperament: Temperament | None = None
    for part in parts:
        if part in _STYLE_ALIASES and style is None:
            style = _STYLE_ALIASES[part]
        elif part in _TEMPERAMENT_ALIASES and temperament is None:
            temperament = _TEMPERAMENT_ALIASES[part]
        else:
            return None
    if style is None and temperament is None:
        return None
    style = style or Style.SWING
    temperament = temperament or Temperament.CONSERVATIVE
    return f"{style.value}/{temperament.value}"


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_profiles(overrides: dict[str, dict[str, Any]]) -> dict[str, StrategyProfile]:
    """The built-ins with the config's `[trading.profiles.<NAME>]` tables applied.

    A key naming a built-in (any accepted spelling) patches it; any other key defines a new
    profile and must say which built-in it starts from with `base = "SWING/AGGRESSIVE"`.
    Nested tables (indicators, thresholds, stop_loss, take_profit, trailing) merge field by
    field.
    Raises ValueError naming the profile and the field."""
    profiles = dict(BUILTIN_PROFILES)
    for key, patch in overrides.items():
        patch = dict(patch)
        base_name = patch.pop("base", None)
        builtin = canonical_name(key)
        if builtin is not None:
            name, start = builtin, BUILTIN_PROFILES[builtin]
        else:
            name = key.strip().upper()
            if base_name is None:
                raise ValueError(
                    f"profile {key!r} is not a built-in; give `base` (one of "
                    f"{', '.join(BUILTIN_PROFILES)}) to start from"
                )
            base_canonical = canonical_name(str(base_name))
            if base_canonical is None:
                raise ValueError(f"profile {key!r}: unknown base {base_name!r}")
            start = BUILTIN_PROFILES[base_canonical]
        data = _deep_merge(start.model_dump(mode="python"), {**patch, "name": name})
        try:
            profiles[name] = StrategyProfile.model_validate(data)
        except ValueError as exc:
            raise ValueError(f"profile {key!r}: {exc}") from None
    return profiles


def lookup(name: str, profiles: dict[str, StrategyProfile]) -> StrategyProfile | None:
    """The profile a strategy name means: a built-in spelling or a custom profile's name."""
    canonical = canonical_name(name)
    if canonical is not None and canonical in profiles:
        return profiles[canonical]
    return profiles.get(name.strip().upper())
