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
"""

from __future__ import annotations

import difflib
import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from kestrel.errors import ConfigError, SettingsError
from kestrel.manual.tokens import consume_token, issue_token, peek_token
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, PositionStatus, utcnow
from kestrel.settings import KestrelSettings, WatchlistItem
from kestrel.settings_risk import SettingsRequest, risk_increases
from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

log = logging.getLogger(__name__)

LIVE_SETTINGS_KEY = "live_settings"
CAS_ATTEMPTS = 20

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
ALL_SYMBOLS = ("*", "ALL")
_NONE_WORDS = frozenset({"", "none", "null", "default", "unset"})


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


@dataclass
class _Approval:
    """A change's own request and the confirmation token given with it (if any); once the
    token is used, `confirmed` lets the rest of the change through."""

    request: SettingsRequest
    confirm: str | None = None
    confirmed: bool = False


# -- reading --------------------------------------------------------------------------------------


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
    if name is None or name.strip().lower() in _NONE_WORDS:
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
        _assign(settings, path, value)
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
            raise _from_validation(exc, f"watchlist[{symbol}]") from None
        if item.strategy is not None:
            canonical_strategy(settings, item.strategy, f"watchlist[{symbol}].strategy")
        items.append(item)
    for symbol, fields in overlay.symbols.items():
        if symbol not in present and fields:
            log.info("live settings for %s ignored: not on the watchlist", symbol)
    try:
        settings.watchlist = items
    except ValidationError as exc:
        raise _from_validation(exc, "watchlist") from None
    return settings


def _assign(settings: KestrelSettings, path: str, value: Any) -> None:
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
    return _jsonable(_resolve_attr(settings, path))


def _from_validation(exc: ValidationError, prefix: str) -> SettingsError:
    problem = exc.errors()[0]
    path = ".".join(str(part) for part in problem["loc"])
    field = f"{prefix}.{path}" if path else prefix
    value = problem.get("input")
    return SettingsError(field, f"got {value!r}; {problem['msg']}")


# -- describing -----------------------------------------------------------------------------------


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


# -- changing -------------------------------------------------------------------------------------


def global_keys(settings: KestrelSettings) -> list[str]:
    """Every settable global path, e.g. risk.min_confidence, trading.gates.cool_off_s."""
    keys: list[str] = []
    for section in SETTABLE_SECTIONS:
        model = _resolve_attr(settings, section)
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
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
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
    _assign(copy, field, value)
    return read_path(copy, field)


def set_setting(
    store: Store,
    base: KestrelSettings,
    key: str,
    value: Any,
    *,
    by: str,
    symbol: str | None = None,
    confirm: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> list[SettingsChange]:
    """Change one setting (for one symbol, or every watchlist symbol with symbol='*').

    Returns one SettingsChange per symbol touched (one for a global field). Nothing is
    written when the value is invalid (SettingsError) or unchanged. In REAL, a change that
    raises risk (kestrel.settings_risk) is written only with a `confirm` token: without one,
    a single SettingsChange with needs_confirmation and the token to confirm with."""
    approval = _Approval(
        SettingsRequest(action="set", key=key, value=_jsonable(value), symbol=symbol), confirm
    )
    current = effective_settings(base, store)
    kind, field = resolve_key(current, key)
    if kind == "global":
        if symbol is not None:
            raise SettingsError(field, "is global; do not pass a symbol")
        stored = canonical_value(current, kind, field, value)

        def set_global(overlay: SettingsOverlay) -> None:
            overlay.fields[field] = stored

        return [
            _commit(
                store,
                base,
                by,
                now,
                field=field,
                symbol=None,
                change=set_global,
                read=lambda s: read_path(s, field),
                approval=approval,
            )
        ]
    if symbol is None:
        raise SettingsError(field, "is per symbol; pass a watchlist symbol (or * for every symbol)")
    stored = canonical_value(current, kind, field, value)
    if field == "trade_amount_usd":
        _require_positive(field, stored)
    targets = (
        [item.symbol for item in current.watchlist]
        if symbol.strip().upper() in ALL_SYMBOLS
        else [_on_watchlist(current, symbol)]
    )
    if len(targets) > 1:  # every symbol: one confirmation for all of them

        def set_all(overlay: SettingsOverlay) -> None:
            for target in targets:
                overlay.symbols.setdefault(target, {})[field] = stored

        overlay, _ = load_overlay(store)
        updated = overlay.model_copy(deep=True)
        set_all(updated)
        pending = _pending(store, base, by, now, approval, overlay, updated, field, symbol, stored)
        if pending is not None:
            return [pending]
    return [
        _set_symbol_field(store, base, by, now, target, field, stored, approval)
        for target in targets
    ]


def _set_symbol_field(
    store: Store,
    base: KestrelSettings,
    by: str,
    now: Callable[[], datetime],
    symbol: str,
    field: str,
    stored: Any,
    approval: _Approval,
) -> SettingsChange:
    def change(overlay: SettingsOverlay) -> None:
        overlay.symbols.setdefault(symbol, {})[field] = stored

    return _commit(
        store,
        base,
        by,
        now,
        field=field,
        symbol=symbol,
        change=change,
        read=lambda s: _jsonable(getattr(s.watch(symbol), field)),
        approval=approval,
    )


def reset_setting(
    store: Store,
    base: KestrelSettings,
    key: str | None,
    *,
    by: str,
    symbol: str | None = None,
    confirm: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> SettingsChange:
    """Return a field (or, with key None, everything) to its configured value. Audited too.
    In REAL, a reset that raises risk needs a `confirm` token, as in `set_setting`."""
    approval = _Approval(SettingsRequest(action="reset", key=key, symbol=symbol), confirm)
    if key is None:

        def clear(overlay: SettingsOverlay) -> None:
            overlay.fields.clear()
            overlay.symbols.clear()
            overlay.added.clear()
            overlay.removed.clear()

        return _commit(
            store,
            base,
            by,
            now,
            field="*",
            symbol=None,
            change=clear,
            read=_snapshot,
            lenient_before=True,
            approval=approval,
        )
    kind, field = resolve_key(base, key)
    if kind == "global":
        return _commit(
            store,
            base,
            by,
            now,
            field=field,
            symbol=None,
            change=lambda o: o.fields.pop(field, None),
            read=lambda s: read_path(s, field),
            lenient_before=True,
            approval=approval,
        )
    if symbol is None:
        raise SettingsError(field, "is per symbol; pass the symbol to reset it for")
    target = symbol.strip().upper()

    def drop(overlay: SettingsOverlay) -> None:
        fields = overlay.symbols.get(target, {})
        fields.pop(field, None)
        if not fields:
            overlay.symbols.pop(target, None)

    return _commit(
        store,
        base,
        by,
        now,
        field=field,
        symbol=target,
        change=drop,
        read=lambda s: _symbol_value(s, target, field),
        lenient_before=True,
        approval=approval,
    )


def watch_add(
    store: Store,
    base: KestrelSettings,
    symbol: str,
    *,
    markets: Collection[str],
    by: str,
    timeframe: str | None = None,
    trade_amount_usd: Decimal | str | None = None,
    trade_enabled: bool | None = None,
    exchange_name: str = "the exchange",
    confirm: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> SettingsChange:
    """Add `symbol` to the watchlist if the exchange lists it (`markets`: its symbols). In
    REAL, adding it with trading on raises risk: it needs a `confirm` token."""
    options = {
        "timeframe": timeframe,
        "trade_amount_usd": None if trade_amount_usd is None else str(trade_amount_usd),
        "trade_enabled": trade_enabled,
    }
    request = SettingsRequest(action="watch-add", symbol=symbol, options=options)
    approval = _Approval(request, confirm)
    try:
        normalised = WatchlistItem(symbol=symbol).symbol
    except ValidationError as exc:
        raise _from_validation(exc, "symbol") from None
    if normalised not in markets:
        close = difflib.get_close_matches(normalised, list(markets), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SettingsError("symbol", f"{normalised} is not a spot market on {exchange_name}{hint}")
    current = effective_settings(base, store)
    if any(item.symbol == normalised for item in current.watchlist):
        raise SettingsError("symbol", f"{normalised} is already on the watchlist")
    item: dict[str, Any] = {"symbol": normalised}
    if timeframe is not None:
        item["timeframe"] = timeframe
    if trade_amount_usd is not None:
        _require_positive("trade_amount_usd", str(trade_amount_usd))
        item["trade_amount_usd"] = str(trade_amount_usd)
    if trade_enabled is not None:
        item["trade_enabled"] = trade_enabled
    try:
        WatchlistItem.model_validate(item)
    except ValidationError as exc:
        raise _from_validation(exc, f"watchlist[{normalised}]") from None
    configured = {i.symbol for i in base.watchlist}

    def add(overlay: SettingsOverlay) -> None:
        if normalised in overlay.removed and normalised in configured:
            overlay.removed.remove(normalised)
            extra = {k: v for k, v in item.items() if k != "symbol"}
            if extra:
                overlay.symbols.setdefault(normalised, {}).update(extra)
        else:
            overlay.added.append(item)

    return _commit(
        store,
        base,
        by,
        now,
        field="watchlist",
        symbol=normalised,
        change=add,
        read=_symbols,
        approval=approval,
    )


def watch_remove(
    store: Store,
    base: KestrelSettings,
    symbol: str,
    *,
    by: str,
    force: bool = False,
    now: Callable[[], datetime] = utcnow,
) -> SettingsChange:
    """Remove `symbol`. Refused while it has an open position or live orders (the paper
    exchange only quotes watchlist symbols, and the cycle would stop managing them) unless
    `force`."""
    current = effective_settings(base, store)
    normalised = _on_watchlist(current, symbol)
    if len(current.watchlist) == 1:
        raise SettingsError("watchlist", f"must keep at least one symbol; {normalised} is the last")
    if not force:
        busy = []
        if store.list_positions(status=PositionStatus.OPEN, symbol=normalised):
            busy.append("an open position")
        if list(store.iter_live_orders(normalised)):
            busy.append("live orders")
        if busy:
            raise SettingsError(
                "symbol",
                f"{normalised} has {' and '.join(busy)}; close/cancel them first or force it",
            )

    def remove(overlay: SettingsOverlay) -> None:
        overlay.symbols.pop(normalised, None)
        kept = [a for a in overlay.added if a.get("symbol") != normalised]
        if len(kept) != len(overlay.added):
            overlay.added = kept
        else:
            overlay.removed.append(normalised)

    return _commit(
        store, base, by, now, field="watchlist", symbol=normalised, change=remove, read=_symbols
    )


# -- confirming a REAL change that raises risk ---------------------------------------------------

MarketsReader = Callable[[], tuple[Collection[str], str]]


def apply_request(
    store: Store,
    base: KestrelSettings,
    request: SettingsRequest,
    *,
    by: str,
    confirm: str | None = None,
    markets: MarketsReader | None = None,
    now: Callable[[], datetime] = utcnow,
) -> list[SettingsChange]:
    """Run a settings request (set / reset / watch-add / watch-remove); `markets` reads the
    exchange's symbols for a watch-add."""
    if request.action == "set":
        if request.key is None:
            raise SettingsError("key", "set needs a key and a value")
        return set_setting(
            store,
            base,
            request.key,
            request.value,
            by=by,
            symbol=request.symbol,
            confirm=confirm,
            now=now,
        )
    if request.action == "reset":
        return [
            reset_setting(
                store, base, request.key, by=by, symbol=request.symbol, confirm=confirm, now=now
            )
        ]
    if request.symbol is None:
        raise SettingsError("symbol", f"{request.action} needs a symbol")
    if request.action == "watch-remove":
        force = bool(request.options.get("force"))
        return [watch_remove(store, base, request.symbol, by=by, force=force, now=now)]
    if markets is None:
        raise SettingsError("symbol", "adding a symbol needs the exchange's markets to check it")
    names, where = markets()
    options = {k: v for k, v in request.options.items() if v is not None}
    return [
        watch_add(
            store,
            base,
            request.symbol,
            markets=names,
            by=by,
            exchange_name=where,
            confirm=confirm,
            now=now,
            **options,
        )
    ]


def confirm_change(
    store: Store,
    base: KestrelSettings,
    token: str,
    *,
    by: str,
    markets: MarketsReader | None = None,
    now: Callable[[], datetime] = utcnow,
) -> list[SettingsChange]:
    """Apply the settings change `token` was issued for (`/confirm TOKEN`, `kestrel settings
    confirm TOKEN`): its own stored request, so a token confirms nothing else. An unknown,
    used or expired token is refused with a SECURITY event (ConfirmationRefused)."""
    record = peek_token(store, token)
    if record is None:  # unknown: refused with a SECURITY event, as for an order
        record = consume_token(store, token, None, request_id=None, by=by, now=now)
    if record.action.get("kind") != SettingsRequest.model_fields["kind"].default:
        raise SettingsError("token", "confirms a manual order, not a settings change")
    request = SettingsRequest.model_validate(record.action)
    if record.used_at is not None or now() >= record.expires_at:
        consume_token(store, token, request, request_id=None, by=by, now=now)  # refuses, audited
    done = apply_request(store, base, request, by=by, confirm=token, markets=markets, now=now)
    after = peek_token(store, token)
    if after is not None and after.used_at is None:  # no longer riskier: applied all the same
        consume_token(store, token, request, request_id=None, by=by, now=now)
    return done


# -- markets ---------------------------------------------------------------------------------------


def exchange_markets(settings: KestrelSettings, store: Store) -> tuple[set[str], str]:
    """The spot symbols the mode's exchange trades, and its name for messages.

    REAL: the exchange's own market list (ccxt load_markets; active spot markets only).
    DEMO: what the paper exchange can price: the symbols with a candle file when it replays,
    else its Binance-like market table."""
    from kestrel.mode import TradingMode

    if settings.mode is TradingMode.REAL:
        from kestrel.wallet import build_exchange

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


# -- the one write path ---------------------------------------------------------------------------


def _commit(
    store: Store,
    base: KestrelSettings,
    by: str,
    now: Callable[[], datetime],
    *,
    field: str,
    symbol: str | None,
    change: Callable[[SettingsOverlay], Any],
    read: Callable[[KestrelSettings], Any],
    lenient_before: bool = False,
    approval: _Approval | None = None,
) -> SettingsChange:
    """Apply `change` to the stored overlay with compare-and-set, after validating the
    settings it produces; the SETTINGS_CHANGED event goes in the same transaction. A REAL
    change that raises risk is written only once confirmed (see `_pending`)."""

    def attempt() -> SettingsChange:
        overlay, version = load_overlay(store)
        try:
            old = read(apply_overlay(base, overlay))
        except SettingsError:
            if not lenient_before:
                raise
            old = None
        updated = overlay.model_copy(deep=True)
        change(updated)
        new = read(apply_overlay(base, updated))  # raises SettingsError: nothing written
        if approval is not None:
            pending = _pending(store, base, by, now, approval, overlay, updated, field, symbol, new)
            if pending is not None:
                return pending.model_copy(update={"old": old})
        same_overlay = updated.model_dump(exclude={"revision", "updated_by", "updated_at"}) == (
            overlay.model_dump(exclude={"revision", "updated_by", "updated_at"})
        )
        # A set to the value in force changes nothing; a reset always clears its override.
        if same_overlay or (old == new and not lenient_before):
            return SettingsChange(
                field=field,
                symbol=symbol,
                old=old,
                new=new,
                changed=False,
                by=by,
                revision=overlay.revision,
            )
        moment = now()
        updated.revision = overlay.revision + 1
        updated.updated_by, updated.updated_at = by, moment
        target = f" for {symbol}" if symbol else ""
        event = Event(
            event_id=f"settings:{store.mode.value}:{updated.revision}",
            type=EventType.SETTINGS_CHANGED,
            mode=store.mode,
            symbol=symbol,
            reasons=[field],
            message=f"{field}{target}: {old!r} -> {new!r} by {by}",
            data={
                "by": by,
                "field": field,
                "symbol": symbol,
                "old": old,
                "new": new,
                "revision": updated.revision,
                "at": moment.isoformat(),
            },
            created_at=moment,
        )
        with store.atomic():
            store.put_state(
                LIVE_SETTINGS_KEY, updated.model_dump(mode="json"), expected_version=version
            )
            store.append_events([event])
        log.info("settings changed: %s", event.message)
        return SettingsChange(
            field=field,
            symbol=symbol,
            old=old,
            new=new,
            changed=True,
            by=by,
            revision=updated.revision,
            event_id=event.event_id,
        )

    return retry_on_conflict(attempt, what="live settings", attempts=CAS_ATTEMPTS)


def _pending(
    store: Store,
    base: KestrelSettings,
    by: str,
    now: Callable[[], datetime],
    approval: _Approval,
    overlay: SettingsOverlay,
    updated: SettingsOverlay,
    field: str,
    symbol: str | None,
    new: Any,
) -> SettingsChange | None:
    """None if going from `overlay` to `updated` may be written now: DEMO, no risk raised
    (kestrel.settings_risk), or confirmed (a token given is used here, and refused with a
    SECURITY event if it is not for exactly this change). Otherwise nothing is written and
    the SettingsChange carries a new one-time token, as a REAL order's preview does."""
    if approval.confirmed or store.mode is not TradingMode.REAL:
        return None
    try:
        before = apply_overlay(base, overlay)
    except SettingsError:  # a stale overlay being reset: compare with the configuration
        before = base
    risks = risk_increases(before, apply_overlay(base, updated))
    if not risks:
        return None
    if approval.confirm is not None:
        consume_token(store, approval.confirm, approval.request, request_id=None, by=by, now=now)
        approval.confirmed = True
        return None
    token, record = issue_token(
        store,
        approval.request,
        request_id=f"settings-{secrets.token_hex(6)}",
        plan=approval.request.fingerprint(),
        prices={},
        by=by,
        now=now,
    )
    return SettingsChange(
        field=field,
        symbol=symbol,
        new=new,
        changed=False,
        by=by,
        revision=overlay.revision,
        needs_confirmation=True,
        token=token,
        expires_at=record.expires_at,
        risks=risks,
    )


def _on_watchlist(settings: KestrelSettings, symbol: str) -> str:
    wanted = symbol.strip().upper()
    listed = [item.symbol for item in settings.watchlist]
    if wanted not in listed:
        raise SettingsError("symbol", f"{wanted} is not on the watchlist ({', '.join(listed)})")
    return wanted


def _require_positive(field: str, value: Any) -> None:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise SettingsError(field, f"got {value!r}; must be a number > 0") from None
    if not amount.is_finite() or amount <= 0:
        raise SettingsError(
            field, f"got {value!r}; must be > 0 (to stop trading a symbol set trade_enabled false)"
        )


def _symbol_value(settings: KestrelSettings, symbol: str, field: str) -> Any:
    listed = [item for item in settings.watchlist if item.symbol == symbol]
    return _jsonable(getattr(listed[0], field)) if listed else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def _symbols(settings: KestrelSettings) -> list[str]:
    return [item.symbol for item in settings.watchlist]


def _snapshot(settings: KestrelSettings) -> dict[str, Any]:
    return {
        "settings": {path: read_path(settings, path) for path in global_keys(settings)},
        "watchlist": [item.model_dump(mode="json") for item in settings.watchlist],
    }


def _resolve_attr(settings: KestrelSettings, path: str) -> Any:
    target: Any = settings
    for part in path.split("."):
        target = getattr(target, part)
    return target


def load_effective(
    config: dict[str, Any] | None = None, *, add_symbols: bool = True, run: str = "flow run"
) -> KestrelSettings:
    """What a flow run trades with: env / config file / `config` overrides (which may not
    widen the mode or the REAL whitelist: kestrel.run_settings), then the live changes stored
    for that mode (so a change takes effect at the next run, no restart)."""
    from kestrel.run_settings import settings_for_run

    return resolve_settings(settings_for_run(config, run=run), add_symbols=add_symbols)
