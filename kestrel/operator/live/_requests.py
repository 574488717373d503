"""One entry point for a settings request from any face (CLI, Telegram, API): dispatch, and the
confirmation of a pending risk-raising change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kestrel.config.settings import KestrelSettings
from kestrel.errors import SettingsError
from kestrel.models import utcnow
from kestrel.operator.live._commit import reset_setting, set_setting
from kestrel.operator.live._overlay import SettingsChange
from kestrel.operator.live._validation import MarketsReader
from kestrel.operator.live._watchlist import watch_add, watch_remove
from kestrel.operator.risk_changes import SettingsRequest
from kestrel.operator.tokens import consume_token, peek_token
from kestrel.store.base import Store


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
