"""Validation of a change: which keys may be set live, their canonical values, and errors that name
the field.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.errors import SettingsError
from kestrel.mode import TradingMode
from kestrel.operator.live._overlay import (
    NONE_WORDS,
    assign,
    canonical_strategy,
    effective_settings,
    load_overlay,
    read_path,
    resolve_attr,
)
from kestrel.store.base import Store

# Per-symbol fields an operator may change live, and the names people use for them.
SYMBOL_FIELDS: tuple[str, ...] = (
    "trade_enabled",
    "alert_enabled",
    "trade_amount_usd",
    "strategy",
    "timeframe",
)


ALIASES: dict[str, str] = {
    "trading": "trade_enabled",
    "trade": "trade_enabled",
    "alerts": "alert_enabled",
    "alert": "alert_enabled",
    "trade_amount": "trade_amount_usd",
    "amount": "trade_amount_usd",
    "preset": "strategy",
    "strategy_preset": "strategy",
    "profile": "strategy",
    "signal_interval": "timeframe",
    "interval": "timeframe",
}


# Global settings an operator may change live: every field of these sections (the risk gates
# and thresholds, sizing, exposure caps, alert throttle) plus a few single fields. Endpoints,
# keys, analysts and storage are not live settings: they change with a deployment.
SETTABLE_SECTIONS: tuple[str, ...] = (
    "risk",
    "trading.gates",
    "trading.sizing",
    "trading.exposure",
    "trading.alerts",
    "trading.trailing",
)


SETTABLE_FIELDS: tuple[str, ...] = (
    "trading.default_strategy",
    "trading.analysis.agreement_threshold",
    "trading.analysis.min_votes",
)


def describe(base: KestrelSettings, store: Store) -> dict[str, Any]:
    """The effective live-changeable settings and where each value comes from."""
    overlay, _ = load_overlay(store)
    settings = effective_settings(base, store)
    configured = {item.symbol for item in base.watchlist}
    watchlist = []
    for item in settings.watchlist:
        overridden = set(overlay.symbols.get(item.symbol, {}))
        watchlist.append(
            {
                **item.model_dump(mode="json"),
                "source": "config" if item.symbol in configured else "live",
                "live_fields": sorted(overridden),
            }
        )
    return {
        "mode": settings.mode.value,
        "revision": overlay.revision,
        "updated_by": overlay.updated_by,
        "updated_at": overlay.updated_at.isoformat() if overlay.updated_at else None,
        "settings": {path: read_path(settings, path) for path in global_keys(settings)},
        "live_fields": sorted(overlay.fields),
        "watchlist": watchlist,
        "removed": list(overlay.removed),
    }


def global_keys(settings: KestrelSettings) -> list[str]:
    """Every settable global path, e.g. risk.min_confidence, trading.gates.cool_off_s."""
    keys: list[str] = []
    for section in SETTABLE_SECTIONS:
        model = resolve_attr(settings, section)
        keys.extend(f"{section}.{name}" for name in type(model).model_fields)
    return [*keys, *SETTABLE_FIELDS]


def settable_keys(settings: KestrelSettings) -> list[str]:
    return [*SYMBOL_FIELDS, *global_keys(settings)]


def resolve_key(settings: KestrelSettings, key: str) -> tuple[str, str]:
    """('symbol', field) or ('global', dotted path) for what a user typed, or SettingsError.

    Accepted: a symbol field or its alias (trade_amount, signal_interval, ...), a full path
    (risk.min_confidence), a path without `trading.` (gates.cool_off_s), or a bare field name
    when only one section has it."""
    name = key.strip().lower().replace("-", "_")
    name = ALIASES.get(name, name)
    if name in SYMBOL_FIELDS:
        return "symbol", name
    paths = global_keys(settings)
    for candidate in (name, f"trading.{name}"):
        if candidate in paths:
            return "global", candidate
    matches = [path for path in paths if path.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return "global", matches[0]
    if matches:
        raise SettingsError(key, f"is ambiguous; say which: {', '.join(matches)}")
    close = difflib.get_close_matches(name, [*SYMBOL_FIELDS, *paths], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise SettingsError(
        key, f"is not a live setting{hint}; allowed: {', '.join(settable_keys(settings))}"
    )


def canonical_value(settings: KestrelSettings, kind: str, field: str, value: Any) -> Any:
    """The JSON value the overlay stores for `value`, validated by the very model field that
    will hold it (so "false", "0.6" or "4h" from a command line become False, 0.6, "4h")."""
    if isinstance(value, str) and value.strip().lower() in NONE_WORDS:
        value = None
    if kind == "symbol":
        if field == "strategy":
            return canonical_strategy(settings, value)
        probe = WatchlistItem(symbol="BTC/USDT")
        try:
            setattr(probe, field, value)
        except ValidationError as exc:
            raise SettingsError(field, f"got {value!r}; {exc.errors()[0]['msg']}") from None
        return probe.model_dump(mode="json")[field]
    if field == "trading.default_strategy":
        return canonical_strategy(settings, value, field)
    copy = settings.model_copy(deep=True)
    assign(copy, field, value)
    return read_path(copy, field)


MarketsReader = Callable[[], tuple[Collection[str], str]]


def exchange_markets(settings: KestrelSettings, store: Store) -> tuple[set[str], str]:
    """The spot symbols the mode's exchange trades, and its name for messages.

    REAL: the exchange's own market list (ccxt load_markets; active spot markets only).
    DEMO: what the paper exchange can price: the symbols with a candle file when it replays,
    else its Binance-like market table."""

    if settings.mode is TradingMode.REAL:
        from kestrel.books.wallet import build_exchange

        exchange = build_exchange(settings, store)
        markets = exchange.load_markets()
        active = {
            symbol
            for symbol, market in markets.items()
            if market.get("spot", True) and market.get("active") is not False
        }
        return active, settings.exchange
    from kestrel.exchange.paper_markets import default_markets
    from kestrel.market.csvfile import find_replay_files

    paper = settings.paper
    if paper.market_data == "replay":
        # a replay can only price what it has candle files for
        if paper.replay_dir is None:
            return set(), "the paper exchange (replay without a replay_dir)"
        return set(find_replay_files(paper.replay_dir)), f"the paper replay ({paper.replay_dir})"
    symbols = set(default_markets())
    return symbols, "the paper exchange"


def on_watchlist(settings: KestrelSettings, symbol: str) -> str:
    wanted = symbol.strip().upper()
    listed = [item.symbol for item in settings.watchlist]
    if wanted not in listed:
        raise SettingsError("symbol", f"{wanted} is not on the watchlist ({', '.join(listed)})")
    return wanted


def require_positive(field: str, value: Any) -> None:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise SettingsError(field, f"got {value!r}; must be a number > 0") from None
    if not amount.is_finite() or amount <= 0:
        raise SettingsError(
            field, f"got {value!r}; must be > 0 (to stop trading a symbol set trade_enabled false)"
        )


def snapshot(settings: KestrelSettings) -> dict[str, Any]:
    return {
        "settings": {path: read_path(settings, path) for path in global_keys(settings)},
        "watchlist": [item.model_dump(mode="json") for item in settings.watchlist],
    }
