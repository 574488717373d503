"""The `[trading]` section of Kestrel's settings: strategy profiles, analysts (SOLO / SWARM,
LLM endpoint, sentiment), safety gates, position sizing, exposure limits, alert throttle.

Nested in KestrelSettings as `trading`, so environment variables read
KESTREL_TRADING__GATES__COOL_OFF_S=600 and the TOML file has `[trading.gates]`.
Kept apart from kestrel.config.settings (and free of kestrel.config.settings imports) so that
settings can
import it without a cycle.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kestrel.strategy.profiles import (
    FALLBACK_PROFILE,
    StrategyProfile,
    build_profiles,
    canonical_name,
    lookup,
)

SECRET_MASK = "**********"  # what SecretStr dumps to; a round-tripped key is no key
NESTED_KEY_ENV = "KESTREL_TRADING__ANALYSIS__LLM__API_KEY"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMSettings(_Section):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, OpenRouter, vLLM, Ollama, ...)."""

    base_url: str = Field(
        default="https://api.openai.com/v1",
        description="API root; the analyst POSTs to <base_url>/chat/completions",
    )
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = Field(
        default=None, description="sent as a Bearer token; or leave empty and use api_key_env"
    )
    api_key_env: str = Field(
        default="KESTREL_LLM_API_KEY",
        description="environment variable read when api_key is empty (survives JSON dumps)",
    )
    timeout_s: float = Field(
        default=20.0, gt=0, le=300, description="hard bound on one whole request"
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=16, le=8192)
    json_mode: bool = Field(default=True, description="send response_format={type: json_object}")
    prompt_candles: int = Field(default=30, ge=5, le=500, description="recent candles shown")
    max_response_bytes: int = Field(default=262_144, ge=1024)
    extra_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://api.openai.com/v1")
        return value

    def key(self) -> str | None:
        """The raw key for the Authorization header only; never log what this returns.

        Settings that went through model_dump(mode="json") (flow parameters) hold the mask
        instead of the key, so the environment is read again: `api_key_env`, then the nested
        variable of the shared section."""
        if self.api_key is not None:
            raw = self.api_key.get_secret_value()
            if raw and raw != SECRET_MASK:
                return raw
        for name in (self.api_key_env, NESTED_KEY_ENV):
            if os.environ.get(name):
                return os.environ[name]
        return None


class SentimentSettings(_Section):
    """A market-wide sentiment index (Fear & Greed shape: {"data": [{"value": "0..100"}]})."""

    url: str = "https://api.alternative.me/fng/?limit=1"
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    extreme_fear: float = Field(default=25, ge=0, le=50, description="at or below: BUY bias")
    extreme_greed: float = Field(default=75, ge=50, le=100, description="at or above: SELL")
    cache_s: float = Field(default=600, ge=0, description="the index moves daily; ask rarely")


AnalystKind = Literal["technical", "llm", "sentiment"]


class AnalystSpec(_Section):
    kind: AnalystKind
    name: str | None = Field(default=None, description="defaults to the kind")
    weight: float = Field(default=1.0, gt=0, le=100, description="its voice in a SWARM vote")
    llm: LLMSettings | None = Field(
        default=None, description="this analyst's endpoint; default: trading.analysis.llm"
    )

    @property
    def label(self) -> str:
        return self.name or self.kind


class AnalysisSettings(_Section):
    mode: Literal["SOLO", "SWARM"] = "SOLO"
    solo: str = Field(default="technical", description="the analyst SOLO mode runs (by name)")
    analysts: list[AnalystSpec] = Field(
        default_factory=lambda: [AnalystSpec(kind="technical")],
        description="the SWARM panel; SOLO picks `solo` from it (or builds that kind)",
    )
    agreement_threshold: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="share of the panel's weight x confidence an action needs in SWARM",
    )
    min_votes: int = Field(default=1, ge=1, description="fewer non-abstaining votes: HOLD")
    llm: LLMSettings = Field(default_factory=LLMSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)

    @model_validator(mode="after")
    def _panel(self) -> AnalysisSettings:
        labels = [spec.label for spec in self.analysts]
        duplicated = {label for label in labels if labels.count(label) > 1}
        if duplicated:
            raise ValueError(f"analyst names must be unique; repeated: {sorted(duplicated)}")
        if not self.analysts:
            raise ValueError("analysts must list at least one analyst")
        if self.solo not in labels and self.solo not in ("technical", "llm", "sentiment"):
            raise ValueError(f"solo {self.solo!r} is neither an analyst name nor a kind")
        return self

    def solo_spec(self) -> AnalystSpec:
        for spec in self.analysts:
            if spec.label == self.solo:
                return spec
        return AnalystSpec.model_validate({"kind": self.solo})  # a kind, validated above

    def panel(self) -> list[AnalystSpec]:
        return [self.solo_spec()] if self.mode == "SOLO" else list(self.analysts)


class GateSettings(_Section):
    """Safety gates. In REAL mode every gate is enforced whatever the switches say; the
    switches only matter in DEMO. The numbers apply in both modes."""

    emergency_stop: bool = Field(default=True, description="DEMO only: honour the kill switch")
    circuit_breaker: bool = Field(default=True, description="DEMO only")
    cooldown: bool = Field(default=True, description="DEMO only")
    daily_loss_limit: bool = Field(default=True, description="DEMO only")
    max_consecutive_failed_orders: int = Field(default=3, ge=1)
    max_consecutive_losses: int = Field(default=3, ge=1)
    cool_off_s: float = Field(
        default=3600, ge=0, description="a tripped breaker resets itself after this (wall clock)"
    )
    breaker_lookback_h: float = Field(
        default=72, gt=0, description="older order/trade outcomes never count towards a streak"
    )
    cooldown_candles: float = Field(
        default=2, ge=0, description="after a fill, same symbol and side wait this many candles"
    )
    daily_loss_limit_pct: Decimal | None = Field(
        default=Decimal("5"), gt=0, le=100, description="% of start-of-day equity"
    )
    daily_loss_limit_usd: Decimal | None = Field(default=None, gt=0)


class SizingSettings(_Section):
    method: Literal["fixed_quote", "percent_of_equity", "risk_based"] = Field(
        default="fixed_quote",
        description="fixed_quote: the watchlist trade_amount_usd; percent_of_equity: "
        "equity_pct of equity; risk_based: lose risk_per_trade_pct of equity at the stop",
    )
    equity_pct: Decimal = Field(default=Decimal("2"), gt=0, le=100)
    risk_per_trade_pct: Decimal = Field(default=Decimal("1"), gt=0, le=20)
    max_order_usd: Decimal | None = Field(default=None, gt=0)


class ExposureSettings(_Section):
    """Caps on what is held (open positions marked to market plus live buy orders), in USD
    and/or % of equity; an entry is clipped to the room left, skipped when none is."""

    max_symbol_usd: Decimal | None = Field(default=None, gt=0)
    max_symbol_pct: Decimal | None = Field(default=Decimal("25"), gt=0, le=100)
    max_total_usd: Decimal | None = Field(default=None, gt=0)
    max_total_pct: Decimal | None = Field(default=Decimal("90"), gt=0, le=100)


class AlertSettings(_Section):
    price_change_pct: Decimal = Field(
        default=Decimal("1"), ge=0, description="move since the last same-side alert"
    )
    cooldown_candles: float = Field(default=4, ge=0)
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="default: the pre-trade confidence threshold"
    )


class TrailingSettings(_Section):
    """The trailing stop for every symbol, over its strategy profile's (live-settable:
    `kestrel settings set trailing.distance_pct 2`). distance_pct None leaves it to the
    profile; 0 turns trailing off whatever the profile says. Positions take it when the
    position monitor first sees them; an open position's own is changed with
    `kestrel order move-stop`."""

    distance_pct: Decimal | None = Field(
        default=None, ge=0, lt=100, description="% below the high the stop trails; 0: off"
    )
    activation_pct: Decimal = Field(
        default=Decimal("0"), ge=0, le=1000, description="profit % at which trailing starts"
    )


class TradingSettings(_Section):
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="patches to built-in profiles, or new ones (base=...)"
    )
    default_strategy: str | None = Field(
        default=None, description=f"profile for symbols without one; unset: {FALLBACK_PROFILE}"
    )
    presets: dict[str, str] = Field(
        default_factory=dict, description="symbol -> profile, e.g. {'BTC/USDT' = 'SCALP'}"
    )
    timeframe_source: Literal["watchlist", "profile"] = Field(
        default="watchlist",
        description="watchlist: analyse each symbol's watchlist timeframe (feeds and replay "
        "files key on it); profile: fetch the profile's timeframe instead",
    )
    single_position: bool = Field(
        default=True,
        description="one position per symbol: an opposite signal exits it (spot: SELL closes "
        "the long) and no new entry is made while it or its exit is pending",
    )
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    sizing: SizingSettings = Field(default_factory=SizingSettings)
    exposure: ExposureSettings = Field(default_factory=ExposureSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    trailing: TrailingSettings = Field(default_factory=TrailingSettings)

    @field_validator("profiles")
    @classmethod
    def _profiles_build(cls, profiles: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        build_profiles(profiles)  # ValueError names the profile and the field
        return profiles

    @field_validator("default_strategy")
    @classmethod
    def _default_known(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            _check_name(name, info.data.get("profiles", {}))
        return name

    @field_validator("presets")
    @classmethod
    def _presets_known(cls, presets: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for symbol, name in presets.items():
            try:
                _check_name(name, info.data.get("profiles", {}))
            except ValueError as exc:
                raise ValueError(f"{symbol}: {exc}") from None
        return {symbol.strip().upper(): name for symbol, name in presets.items()}

    def all_profiles(self) -> dict[str, StrategyProfile]:
        return build_profiles(self.profiles)

    def profile(self, name: str) -> StrategyProfile | None:
        return lookup(name, self.all_profiles())


def _check_name(name: str, overrides: dict[str, dict[str, Any]]) -> None:
    from kestrel.strategy.loader import is_plugin_ref

    profiles = build_profiles(overrides)
    if lookup(name, profiles) is None and not is_plugin_ref(name):
        raise ValueError(
            f"unknown strategy {name!r}; allowed: {', '.join(profiles)} "
            "(or a style / temperament alone, or a plugin: package.module:Class)"
        )


__all__ = [
    "AlertSettings",
    "AnalysisSettings",
    "AnalystSpec",
    "ExposureSettings",
    "GateSettings",
    "LLMSettings",
    "SentimentSettings",
    "SizingSettings",
    "TradingSettings",
    "TrailingSettings",
    "canonical_name",
]
