"""Live settings: operator changes to the watchlist and the risk gates, made without a restart.

Why an overlay in the store rather than rewriting kestrel.toml: the configuration file (and the
environment) stays the operator's declared baseline, every process that trades reads the same
store, and the store gives us compare-and-set plus the audit event in one transaction.

- The overlay is one state document per mode (`live_settings`), so DEMO experiments never
  change REAL settings. It holds only what was changed: global fields by dotted path (risk
  gates, trading.gates / sizing / exposure / alerts, the default strategy), per-symbol fields
  (trading and alerts on/off, trade amount, strategy profile, signal timeframe), symbols
  added, configured symbols removed.
- `effective_settings(base, store)` = the configured settings with the overlay applied. Every
  consumer that acts on settings (the trading cycle, manual orders) calls it at the start of
  a run, so a change takes effect at the next cycle. A flow that already started keeps the
  settings it started with.
- Every change is validated by building the settings it would produce (the same pydantic
  models that validate kestrel.toml) before anything is written; an invalid change raises
  SettingsError naming the field and what is allowed, and the previous overlay stays.
- Every change is a SETTINGS_CHANGED event (who, what, old, new, revision), written in the
  same transaction as the overlay.

Rooms: `_overlay` (the model, loading and applying it), `_validation` (which keys may be set
live and their canonical values), `_commit` (compare-and-set with the audit event and the
second confirmation), `_watchlist` (symbols added or removed), `_requests` (one entry point
for a request from any face).
"""

from kestrel.errors import SettingsError
from kestrel.operator.live._commit import reset_setting, set_setting
from kestrel.operator.live._overlay import (
    ALL_SYMBOLS,
    CAS_ATTEMPTS,
    LIVE_SETTINGS_KEY,
    SettingsChange,
    SettingsOverlay,
    apply_overlay,
    canonical_strategy,
    effective_settings,
    load_effective,
    load_overlay,
    read_path,
    resolve_settings,
    strategy_names,
)
from kestrel.operator.live._requests import apply_request, confirm_change
from kestrel.operator.live._validation import (
    ALIASES,
    SETTABLE_FIELDS,
    SETTABLE_SECTIONS,
    SYMBOL_FIELDS,
    MarketsReader,
    canonical_value,
    describe,
    exchange_markets,
    global_keys,
    resolve_key,
    settable_keys,
)
from kestrel.operator.live._watchlist import watch_add, watch_remove

__all__ = [
    "ALIASES",
    "ALL_SYMBOLS",
    "CAS_ATTEMPTS",
    "LIVE_SETTINGS_KEY",
    "SETTABLE_FIELDS",
    "SETTABLE_SECTIONS",
    "SYMBOL_FIELDS",
    "MarketsReader",
    "SettingsChange",
    "SettingsError",
    "SettingsOverlay",
    "apply_overlay",
    "apply_request",
    "canonical_strategy",
    "canonical_value",
    "confirm_change",
    "describe",
    "effective_settings",
    "exchange_markets",
    "global_keys",
    "load_effective",
    "load_overlay",
    "read_path",
    "reset_setting",
    "resolve_key",
    "resolve_settings",
    "set_setting",
    "settable_keys",
    "strategy_names",
    "watch_add",
    "watch_remove",
]
