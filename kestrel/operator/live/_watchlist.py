"""Watchlist edits: symbols added to or removed from what the cycle trades."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.errors import SettingsError
from kestrel.models import PositionStatus, utcnow
from kestrel.operator.live._commit import Approval, commit_change
from kestrel.operator.live._overlay import (
    SettingsChange,
    SettingsOverlay,
    effective_settings,
    from_validation,
    watched_symbols,
)
from kestrel.operator.live._validation import on_watchlist, require_positive
from kestrel.operator.risk_changes import SettingsRequest
from kestrel.store.base import Store


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
    approval = Approval(request, confirm)
    try:
        normalised = WatchlistItem(symbol=symbol).symbol
    except ValidationError as exc:
        raise from_validation(exc, "symbol") from None
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
        require_positive("trade_amount_usd", str(trade_amount_usd))
        item["trade_amount_usd"] = str(trade_amount_usd)
    if trade_enabled is not None:
        item["trade_enabled"] = trade_enabled
    try:
        WatchlistItem.model_validate(item)
    except ValidationError as exc:
        raise from_validation(exc, f"watchlist[{normalised}]") from None
    configured = {i.symbol for i in base.watchlist}

    def add(overlay: SettingsOverlay) -> None:
        if normalised in overlay.removed and normalised in configured:
            overlay.removed.remove(normalised)
            extra = {k: v for k, v in item.items() if k != "symbol"}
            if extra:
                overlay.symbols.setdefault(normalised, {}).update(extra)
        else:
            overlay.added.append(item)

    return commit_change(
        store,
        base,
        by,
        now,
        field="watchlist",
        symbol=normalised,
        change=add,
        read=watched_symbols,
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
    normalised = on_watchlist(current, symbol)
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

    return commit_change(
        store,
        base,
        by,
        now,
        field="watchlist",
        symbol=normalised,
        change=remove,
        read=watched_symbols,
    )
