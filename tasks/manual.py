"""Manual actions as Prefect tasks. Each sets the trading mode from the settings and applies
the live settings before acting (kestrel.operator.live), then delegates to kestrel.manual.

No automatic retries: a manual action is an operator's, placement is idempotent by request
id, and a REAL confirmation token works once, so a failed run is re-run by hand (same
request id) rather than retried behind the operator's back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from kestrel.config.settings import KestrelSettings
from kestrel.manual import (
    CancelOutcome,
    ManualOutcome,
    ResetOutcome,
    cancel_order,
    confirm_token,
    parse_request,
    reset_paper_account,
    submit,
)
from kestrel.mode import trading_mode
from kestrel.money import to_decimal
from kestrel.operator.live import (
    SettingsChange,
    exchange_markets,
    reset_setting,
    resolve_settings,
    set_setting,
    watch_add,
    watch_remove,
)
from kestrel.runtime import Runtime, get_runtime
from kestrel.store import open_store


def manual_runtime(settings: KestrelSettings) -> Runtime:
    """The process's runtime for the settings in force now (configured + live changes).
    Call inside trading_mode(settings.mode)."""
    from blocks.exchange_account import use_exchange_account

    use_exchange_account(settings)
    return get_runtime(resolve_settings(settings))


@task(name="manual-action", cache_policy=NO_CACHE)
def manual_action_task(
    settings: KestrelSettings,
    request: dict[str, Any],
    actor: str,
    confirm: str | None = None,
    dry_run: bool = False,
) -> ManualOutcome:
    with trading_mode(settings.mode):
        rt = manual_runtime(settings)
        return submit(rt, parse_request(request), actor=actor, confirm=confirm, dry_run=dry_run)


@task(name="manual-confirm", cache_policy=NO_CACHE)
def manual_confirm_task(settings: KestrelSettings, token: str, actor: str) -> ManualOutcome:
    with trading_mode(settings.mode):
        return confirm_token(manual_runtime(settings), token, actor=actor)


@task(name="manual-cancel", cache_policy=NO_CACHE)
def manual_cancel_task(settings: KestrelSettings, order: str, actor: str) -> CancelOutcome:
    with trading_mode(settings.mode):
        return cancel_order(manual_runtime(settings), order, actor=actor)


@task(name="paper-reset", cache_policy=NO_CACHE)
def paper_reset_task(
    settings: KestrelSettings,
    balance: Decimal,
    actor: str,
    extra_balances: dict[str, Decimal] | None = None,
    reason: str = "",
) -> ResetOutcome:
    with trading_mode(settings.mode):
        if settings.mode.value != "DEMO":  # refused (and recorded) without a REAL wallet
            store = open_store(settings, settings.mode)
            try:
                return reset_paper_account(store, settings, balance=balance, actor=actor)
            finally:
                store.close()
        rt = manual_runtime(settings)
        return reset_paper_account(
            rt.store,
            rt.settings,
            balance=balance,
            actor=actor,
            extra_balances=extra_balances,
            reason=reason,
            price_of=lambda symbol: to_decimal(rt.exchange.fetch_ticker(symbol)["last"]),
        )


@task(name="settings-change", cache_policy=NO_CACHE)
def settings_change_task(
    settings: KestrelSettings,
    action: str,
    actor: str,
    key: str | None = None,
    value: str | None = None,
    symbol: str | None = None,
    force: bool = False,
    timeframe: str | None = None,
    trade_amount_usd: str | None = None,
    confirm: str | None = None,
) -> list[SettingsChange]:
    """action: set | reset | watch-add | watch-remove. watch-add checks the symbol against
    the markets of the mode's exchange. REAL: a riskier change needs `confirm` (its token)."""
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            if action == "set":
                if key is None or value is None:
                    raise ValueError("set needs a key and a value")
                return set_setting(
                    store, settings, key, value, symbol=symbol, by=actor, confirm=confirm
                )
            if action == "reset":
                return [
                    reset_setting(store, settings, key, symbol=symbol, by=actor, confirm=confirm)
                ]
            if action == "watch-add":
                if symbol is None:
                    raise ValueError("watch-add needs a symbol")
                if settings.mode.value == "REAL":
                    from blocks.exchange_account import use_exchange_account

                    use_exchange_account(settings)
                markets, where = exchange_markets(settings, store)
                change = watch_add(
                    store,
                    settings,
                    symbol,
                    markets=markets,
                    by=actor,
                    timeframe=timeframe,
                    trade_amount_usd=trade_amount_usd,
                    exchange_name=where,
                    confirm=confirm,
                )
                return [change]
            if action == "watch-remove":
                if symbol is None:
                    raise ValueError("watch-remove needs a symbol")
                return [watch_remove(store, settings, symbol, by=actor, force=force)]
            raise ValueError(f"action must be set, reset, watch-add or watch-remove: {action!r}")
        finally:
            store.close()
