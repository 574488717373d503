"""Which profile a symbol trades with, and on which timeframe.

The order is the issue's: the watchlist item's own `strategy`, then the symbol's preset in the
trading config, then the config's default, then SWING/CONSERVATIVE. The answer says where it
came from, so `kestrel strategy` and every analysis can show it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.errors import ConfigError
from kestrel.strategy.loader import is_plugin_ref, plugin_profile
from kestrel.strategy.plugin import StrategyError
from kestrel.strategy.profiles import (
    BUILTIN_PROFILES,
    FALLBACK_PROFILE,
    StrategyProfile,
    Trailing,
    lookup,
)

Source = Literal["watchlist", "preset", "default", "fallback"]


class SymbolPlan(BaseModel):
    """A watchlist item with its profile resolved. `item.timeframe` is the timeframe the cycle
    fetches and analyses (the profile's when trading.timeframe_source = "profile")."""

    model_config = ConfigDict(frozen=True)

    item: WatchlistItem
    profile: StrategyProfile
    source: Source
    requested: str

    @property
    def symbol(self) -> str:
        return self.item.symbol


def resolve_plan(settings: KestrelSettings, item: WatchlistItem) -> SymbolPlan:
    trading = settings.trading
    profiles = trading.all_profiles()
    candidates: list[tuple[Source, str | None, str]] = [
        ("watchlist", item.strategy, f"watchlist[{item.symbol}].strategy"),
        ("preset", trading.presets.get(item.symbol), f"trading.presets.{item.symbol}"),
        ("default", trading.default_strategy, "trading.default_strategy"),
    ]
    for source, name, field in candidates:
        if not name:
            continue
        profile = lookup(name, profiles)
        if profile is None and is_plugin_ref(name):
            try:
                profile = plugin_profile(name)
            except StrategyError as exc:
                raise ConfigError(f"{field}: {exc}") from None
        if profile is None:
            raise ConfigError(
                f"{field}: unknown strategy {name!r}; allowed: {', '.join(profiles)} "
                "(or a style / temperament alone, e.g. SCALP or AGGRESSIVE)"
            )
        return _plan(settings, item, profile, source, name)
    fallback = profiles.get(FALLBACK_PROFILE, BUILTIN_PROFILES[FALLBACK_PROFILE])  # as patched
    return _plan(settings, item, fallback, "fallback", FALLBACK_PROFILE)


def _plan(
    settings: KestrelSettings,
    item: WatchlistItem,
    profile: StrategyProfile,
    source: Source,
    requested: str,
) -> SymbolPlan:
    if settings.trading.timeframe_source == "profile" and item.timeframe != profile.timeframe:
        item = item.model_copy(update={"timeframe": profile.timeframe})
    return SymbolPlan(item=item, profile=profile, source=source, requested=requested)


def resolve_plans(settings: KestrelSettings) -> list[SymbolPlan]:
    """Every watchlist symbol's plan; ConfigError (naming the field) before any trading."""
    return [resolve_plan(settings, item) for item in settings.watchlist]


def trailing_for(settings: KestrelSettings, symbol: str) -> Trailing | None:
    """The trailing stop a new position in `symbol` takes: `trading.trailing` when it sets a
    distance (0: off), else the symbol's profile's. None: no trailing. A symbol no longer on
    the watchlist (a position left over) follows the default profile."""
    override = settings.trading.trailing
    if override.distance_pct is not None:
        if override.distance_pct == 0:
            return None
        return Trailing(activation_pct=override.activation_pct, distance_pct=override.distance_pct)
    item = next((i for i in settings.watchlist if i.symbol == symbol), None)
    return resolve_plan(settings, item or WatchlistItem(symbol=symbol)).profile.trailing
