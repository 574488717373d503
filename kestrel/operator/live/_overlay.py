"""The overlay model: operator changes kept in the store, applied over the configured settings."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.errors import ConfigError, SettingsError
from kestrel.mode import TradingMode
from kestrel.store.base import Store

log = logging.getLogger(__name__)


LIVE_SETTINGS_KEY = "live_settings"


CAS_ATTEMPTS = 20


ALL_SYMBOLS = ("*", "ALL")


NONE_WORDS = frozenset({"", "none", "null", "default", "unset"})


class SettingsOverlay(BaseModel):
    """What operators changed on top of the configured settings (one per mode)."""

    fields: dict[str, Any] = Field(
        default_factory=dict, description="dotted path -> value, e.g. risk.min_confidence"
    )
    symbols: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="symbol -> {field: value} overrides"
    )
    added: list[dict[str, Any]] = Field(
        default_factory=list, description="watchlist items added live"
    )
    removed: list[str] = Field(default_factory=list, description="configured symbols removed")
    revision: int = 0
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.fields or self.symbols or self.added or self.removed)


class SettingsChange(BaseModel):
    """The result of one change request: what it was and whether anything changed."""

    field: str
    symbol: str | None = None
    old: Any = None
    new: Any = None
    changed: bool
    by: str
    revision: int
    event_id: str | None = None
    needs_confirmation: bool = Field(
        default=False, description="REAL: the change raises risk; nothing written, see token"
    )
    token: str | None = Field(default=None, description="confirm with it to apply the change")
    expires_at: datetime | None = None
    risks: list[str] = Field(default_factory=list, description="the limits it would loosen")


def load_overlay(store: Store) -> tuple[SettingsOverlay, int]:
    """(overlay, version); an empty overlay at version 0 when nothing was ever changed."""
    found = store.get_state(LIVE_SETTINGS_KEY)
    if found is None:
        return SettingsOverlay(), 0
    return SettingsOverlay.model_validate(found[0]), found[1]


def effective_settings(
    base: KestrelSettings, store: Store, *, add_symbols: bool = True
) -> KestrelSettings:
    """`base` with this mode's live changes applied. ConfigError if the stored overlay no
    longer validates against `base` (e.g. the config file changed): fail loudly, never trade
    on settings nobody chose; `kestrel settings reset` clears it.

    `add_symbols=False` applies everything but the symbols added live: for a run that trades
    a named subset of the watchlist (one deployment per watchlist), so that an added symbol
    joins one run (the default watchlist's) rather than all of them."""
    overlay, _ = load_overlay(store)
    if overlay.is_empty:
        return base
    if not add_symbols:
        overlay = overlay.model_copy(update={"added": []})
    try:
        return apply_overlay(base, overlay)
    except SettingsError as exc:
        raise ConfigError(
            f"live settings ({LIVE_SETTINGS_KEY}, revision {overlay.revision}) no longer apply: "
            f"{exc}; fix it with `kestrel settings set` or clear it with `kestrel settings reset`"
        ) from None


def resolve_settings(
    base: KestrelSettings, mode: TradingMode | None = None, *, add_symbols: bool = True
) -> KestrelSettings:
    """The one-line hook for flows: open the mode's store, apply its overlay, close it."""
    from kestrel.store.router import open_store

    store = open_store(base, mode or base.mode)
    try:
        return effective_settings(base, store, add_symbols=add_symbols)
    finally:
        store.close()


def strategy_names(settings: KestrelSettings) -> list[str]:
    """The strategy profiles a symbol may use (built-in ones plus those the config adds)."""
    return list(settings.trading.all_profiles())


def canonical_strategy(
    settings: KestrelSettings, name: str | None, field: str = "strategy"
) -> str | None:
    """A profile's full name for `name` (a name, or a style / temperament alone), or
    SettingsError listing the allowed names."""
    if name is None or name.strip().lower() in NONE_WORDS:
        return None
    profile = settings.trading.profile(name.strip())
    if profile is None:
        raise SettingsError(
            field,
            f"got {name!r}; allowed: {', '.join(strategy_names(settings))} (or a style / "
            "temperament alone, e.g. SCALP or AGGRESSIVE; none for the default)",
        )
    return profile.name


def apply_overlay(base: KestrelSettings, overlay: SettingsOverlay) -> KestrelSettings:
    """Validate and apply; SettingsError names the first field that does not validate.

    Global fields are assigned on a deep copy of `base`, so each goes through the same
    validators as in kestrel.toml (field constraints and the sections' model validators)."""
    settings = base.model_copy(deep=True)
    for path, value in overlay.fields.items():
        assign(settings, path, value)
    removed = set(overlay.removed)
    raw: list[dict[str, Any]] = [
        item.model_dump() for item in base.watchlist if item.symbol not in removed
    ]
    present = {row["symbol"] for row in raw}
    for added in overlay.added:
        if added.get("symbol") not in present:
            raw.append(dict(added))
            present.add(added.get("symbol"))
    items: list[WatchlistItem] = []
    for row in raw:
        symbol = row["symbol"]
        merged = {**row, **overlay.symbols.get(symbol, {})}
        try:
            item = WatchlistItem.model_validate(merged)
        except ValidationError as exc:
            raise from_validation(exc, f"watchlist[{symbol}]") from None
        if item.strategy is not None:
            canonical_strategy(settings, item.strategy, f"watchlist[{symbol}].strategy")
        items.append(item)
    for symbol, fields in overlay.symbols.items():
        if symbol not in present and fields:
            log.info("live settings for %s ignored: not on the watchlist", symbol)
    try:
        settings.watchlist = items
    except ValidationError as exc:
        raise from_validation(exc, "watchlist") from None
    return settings


def assign(settings: KestrelSettings, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target: Any = settings
    for part in parents:
        target = getattr(target, part)
    try:
        setattr(target, leaf, value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise SettingsError(path, f"got {value!r}; {problem['msg']}") from None


def read_path(settings: KestrelSettings, path: str) -> Any:
    return jsonable(resolve_attr(settings, path))


def from_validation(exc: ValidationError, prefix: str) -> SettingsError:
    problem = exc.errors()[0]
    path = ".".join(str(part) for part in problem["loc"])
    field = f"{prefix}.{path}" if path else prefix
    value = problem.get("input")
    return SettingsError(field, f"got {value!r}; {problem['msg']}")


def symbol_value(settings: KestrelSettings, symbol: str, field: str) -> Any:
    listed = [item for item in settings.watchlist if item.symbol == symbol]
    return jsonable(getattr(listed[0], field)) if listed else None


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def watched_symbols(settings: KestrelSettings) -> list[str]:
    return [item.symbol for item in settings.watchlist]


def resolve_attr(settings: KestrelSettings, path: str) -> Any:
    target: Any = settings
    for part in path.split("."):
        target = getattr(target, part)
    return target


def load_effective(
    config: dict[str, Any] | None = None, *, add_symbols: bool = True, run: str = "flow run"
) -> KestrelSettings:
    """What a flow run trades with: env / config file / `config` overrides (which may not
    widen the mode or the REAL whitelist: kestrel.operator.run), then the live changes stored
    for that mode (so a change takes effect at the next run, no restart)."""
    from kestrel.operator.run import settings_for_run

    return resolve_settings(settings_for_run(config, run=run), add_symbols=add_symbols)
