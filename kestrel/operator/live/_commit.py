"""Committing a change: compare-and-set of the overlay with its audit event, and the second
confirmation of a risk-raising change.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kestrel.config.settings import KestrelSettings
from kestrel.errors import SettingsError
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, utcnow
from kestrel.operator.live._overlay import (
    ALL_SYMBOLS,
    CAS_ATTEMPTS,
    LIVE_SETTINGS_KEY,
    SettingsChange,
    SettingsOverlay,
    apply_overlay,
    effective_settings,
    jsonable,
    load_overlay,
    read_path,
    symbol_value,
)
from kestrel.operator.live._validation import (
    canonical_value,
    on_watchlist,
    require_positive,
    resolve_key,
    snapshot,
)
from kestrel.operator.risk_changes import SettingsRequest, risk_increases
from kestrel.operator.tokens import consume_token, issue_token
from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

log = logging.getLogger(__name__)


@dataclass
class Approval:
    """A change's own request and the confirmation token given with it (if any); once the
    token is used, `confirmed` lets the rest of the change through."""

    request: SettingsRequest
    confirm: str | None = None
    confirmed: bool = False


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
    raises risk (kestrel.operator.risk_changes) is written only with a `confirm` token: without one,
    a single SettingsChange with needs_confirmation and the token to confirm with."""
    approval = Approval(
        SettingsRequest(action="set", key=key, value=jsonable(value), symbol=symbol), confirm
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
            commit_change(
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
        require_positive(field, stored)
    targets = (
        [item.symbol for item in current.watchlist]
        if symbol.strip().upper() in ALL_SYMBOLS
        else [on_watchlist(current, symbol)]
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
    approval: Approval,
) -> SettingsChange:
    def change(overlay: SettingsOverlay) -> None:
        overlay.symbols.setdefault(symbol, {})[field] = stored

    return commit_change(
        store,
        base,
        by,
        now,
        field=field,
        symbol=symbol,
        change=change,
        read=lambda s: jsonable(getattr(s.watch(symbol), field)),
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
    approval = Approval(SettingsRequest(action="reset", key=key, symbol=symbol), confirm)
    if key is None:

        def clear(overlay: SettingsOverlay) -> None:
            overlay.fields.clear()
            overlay.symbols.clear()
            overlay.added.clear()
            overlay.removed.clear()

        return commit_change(
            store,
            base,
            by,
            now,
            field="*",
            symbol=None,
            change=clear,
            read=snapshot,
            lenient_before=True,
            approval=approval,
        )
    kind, field = resolve_key(base, key)
    if kind == "global":
        return commit_change(
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

    return commit_change(
        store,
        base,
        by,
        now,
        field=field,
        symbol=target,
        change=drop,
        read=lambda s: symbol_value(s, target, field),
        lenient_before=True,
        approval=approval,
    )


def commit_change(
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
    approval: Approval | None = None,
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
    approval: Approval,
    overlay: SettingsOverlay,
    updated: SettingsOverlay,
    field: str,
    symbol: str | None,
    new: Any,
) -> SettingsChange | None:
    """None if going from `overlay` to `updated` may be written now: DEMO, no risk raised
    (kestrel.operator.risk_changes), or confirmed (a token given is used here, and refused with a
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
