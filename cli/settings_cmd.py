"""`kestrel settings ...`: change trading settings live (no restart), with an audit trail.

Changes are stored per mode in the store (kestrel.operator.live) on top of kestrel.toml /
the environment, validated before they are written, recorded as SETTINGS_CHANGED events, and
used from the next trading cycle on. In REAL, a change that loosens a risk limit is not
applied at once: it prints what it would loosen and a one-time token, and runs only when
repeated with `--confirm TOKEN` (or `kestrel settings confirm TOKEN`) within a minute, like a
REAL order. Exit codes: 0 done (or a token issued), 1 a refused confirmation, 2 a refused
(invalid) change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from cli._common import actor, app, fail, load_cli_settings

if TYPE_CHECKING:
    from kestrel.config.settings import KestrelSettings
    from kestrel.operator.live import SettingsChange
    from kestrel.store.base import Store

settings_app = typer.Typer(
    help="Live settings: show, set, reset, watch-add, watch-remove, confirm, history.",
    no_args_is_help=True,
)
app.add_typer(settings_app, name="settings")

SymbolOption = Annotated[
    str | None,
    typer.Option("--symbol", "-s", help="watchlist symbol for per-symbol settings, * for all"),
]
ConfirmOption = Annotated[
    str | None,
    typer.Option("--confirm", help="REAL: the token a riskier change printed, to apply it"),
]


@contextmanager
def settings_store() -> Iterator[tuple[KestrelSettings, Store]]:
    """The configured settings and the store of their mode (no exchange needed)."""
    from kestrel.mode import trading_mode
    from kestrel.store import open_store

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            yield settings, store
        finally:
            store.close()


def _echo_change(change: SettingsChange) -> None:
    target = f" [{change.symbol}]" if change.symbol else ""
    if change.needs_confirmation:
        for risk in change.risks:
            typer.echo(f"raises risk: {risk}")
        expires = f" before {change.expires_at:%H:%M:%S} UTC" if change.expires_at else ""
        typer.echo(f"confirmation token: {change.token}")
        typer.echo(
            "REAL mode: nothing changed yet. Repeat the command with --confirm TOKEN (or run "
            f"`kestrel settings confirm TOKEN`){expires} to apply it."
        )
    elif change.changed:
        typer.echo(
            f"{change.field}{target}: {change.old!r} -> {change.new!r} "
            f"(revision {change.revision}; applies from the next cycle)"
        )
    else:
        typer.echo(f"{change.field}{target}: already {change.new!r}; nothing changed")


def _refused(exc: Exception) -> typer.Exit:
    """Exit 1 for a refused confirmation token (as for orders), 2 for an invalid change."""
    from kestrel.errors import ConfirmationRefused

    return fail(f"refused: {exc}", 1 if isinstance(exc, ConfirmationRefused) else 2)


@settings_app.command("show")
def show_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """The settings in force (configured + live changes) and which ones were changed live."""
    from kestrel.errors import ConfigError
    from kestrel.operator.live import describe

    with settings_store() as (settings, store):
        try:
            shown = describe(settings, store)
        except ConfigError as exc:
            raise fail(str(exc), 2) from None
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    typer.echo(f"mode {shown['mode']}, live revision {shown['revision']}")
    if shown["updated_by"]:
        typer.echo(f"last changed by {shown['updated_by']} at {shown['updated_at']}")
    typer.echo("watchlist:")
    for item in shown["watchlist"]:
        live = f"  (live: {', '.join(item['live_fields'])})" if item["live_fields"] else ""
        added = "  [added live]" if item["source"] == "live" else ""
        typer.echo(
            f"  {item['symbol']:<12} {item['timeframe']:>4}  trading "
            f"{'on' if item['trade_enabled'] else 'OFF'}, alerts "
            f"{'on' if item['alert_enabled'] else 'OFF'}, amount {item['trade_amount_usd']} USD, "
            f"strategy {item['strategy'] or 'default'}{added}{live}"
        )
    if shown["removed"]:
        typer.echo(f"  removed live: {', '.join(shown['removed'])}")
    typer.echo("settings (* = changed live):")
    for key, value in shown["settings"].items():
        mark = "*" if key in shown["live_fields"] else " "
        typer.echo(f" {mark} {key} = {value}")


@settings_app.command("set")
def set_cmd(
    key: Annotated[
        str,
        typer.Argument(
            help="e.g. trade_enabled, alert_enabled, trade_amount_usd, strategy, timeframe "
            "(per symbol); risk.min_confidence, trading.gates.cool_off_s, ... (global)"
        ),
    ],
    value: Annotated[str, typer.Argument(help="the new value (none: clear a strategy)")],
    symbol: SymbolOption = None,
    confirm: ConfirmOption = None,
) -> None:
    """Change one setting; it is validated, audited and applied from the next cycle."""
    from kestrel.errors import ConfigError, ConfirmationRefused, SettingsError
    from kestrel.operator.live import set_setting

    with settings_store() as (settings, store):
        try:
            done = set_setting(
                store, settings, key, value, symbol=symbol, by=actor(), confirm=confirm
            )
        except (SettingsError, ConfigError, ConfirmationRefused) as exc:
            raise _refused(exc) from None
    for change in done:
        _echo_change(change)


@settings_app.command("reset")
def reset_cmd(
    key: Annotated[str | None, typer.Argument(help="the setting; omit with --all")] = None,
    symbol: SymbolOption = None,
    everything: Annotated[
        bool, typer.Option("--all", help="drop every live change (back to the config)")
    ] = False,
    confirm: ConfirmOption = None,
) -> None:
    """Return a setting (or, with --all, everything) to its configured value."""
    from kestrel.errors import ConfigError, ConfirmationRefused, SettingsError
    from kestrel.operator.live import reset_setting

    if (key is None) == (not everything):
        raise fail("give a setting to reset, or --all", 2)
    with settings_store() as (settings, store):
        try:
            change = reset_setting(store, settings, key, symbol=symbol, by=actor(), confirm=confirm)
        except (SettingsError, ConfigError, ConfirmationRefused) as exc:
            raise _refused(exc) from None
    _echo_change(change)


@settings_app.command("watch-add")
def watch_add_cmd(
    symbol: Annotated[str, typer.Argument(help="e.g. SOL/USDT; must be a market of the exchange")],
    timeframe: Annotated[str | None, typer.Option(help="signal interval, e.g. 1h")] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="trade amount in USD")] = None,
    trade: Annotated[
        bool, typer.Option("--trade/--no-trade", help="trade it, or only watch and alert")
    ] = True,
    confirm: ConfirmOption = None,
) -> None:
    """Add a symbol to the watchlist (checked against the exchange's markets)."""
    from kestrel.errors import ConfigError, ConfirmationRefused, KestrelError, SettingsError
    from kestrel.operator.live import exchange_markets, watch_add

    with settings_store() as (settings, store):
        try:
            markets, where = exchange_markets(settings, store)
            change = watch_add(
                store,
                settings,
                symbol,
                markets=markets,
                by=actor(),
                timeframe=timeframe,
                trade_amount_usd=amount,
                trade_enabled=trade,
                exchange_name=where,
                confirm=confirm,
            )
        except (SettingsError, ConfigError, ConfirmationRefused) as exc:
            raise _refused(exc) from None
        except KestrelError as exc:
            raise fail(f"cannot check the exchange's markets: {exc}", 1) from None
    _echo_change(change)


@settings_app.command("confirm")
def confirm_cmd(
    token: Annotated[str, typer.Argument(help="the token a REAL riskier change printed")],
) -> None:
    """REAL: apply the settings change a token was issued for (that change, once)."""
    from kestrel.errors import ConfigError, ConfirmationRefused, KestrelError, SettingsError
    from kestrel.operator.live import confirm_change, exchange_markets

    with settings_store() as (settings, store):
        try:
            done = confirm_change(
                store,
                settings,
                token,
                by=actor(),
                markets=lambda: exchange_markets(settings, store),
            )
        except (SettingsError, ConfigError, ConfirmationRefused) as exc:
            raise _refused(exc) from None
        except KestrelError as exc:
            raise fail(f"cannot check the exchange's markets: {exc}", 1) from None
    for change in done:
        _echo_change(change)


@settings_app.command("watch-remove")
def watch_remove_cmd(
    symbol: Annotated[str, typer.Argument(help="a watchlist symbol")],
    force: Annotated[
        bool, typer.Option("--force", help="even with an open position or live orders")
    ] = False,
) -> None:
    """Remove a symbol from the watchlist."""
    from kestrel.errors import ConfigError, SettingsError
    from kestrel.operator.live import watch_remove

    with settings_store() as (settings, store):
        try:
            change = watch_remove(store, settings, symbol, by=actor(), force=force)
        except (SettingsError, ConfigError) as exc:
            raise _refused(exc) from None
    _echo_change(change)


@settings_app.command("history")
def history_cmd(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="how many, newest last")] = 20,
) -> None:
    """The audit trail: who changed what, when, from what to what."""
    from kestrel.models import EventType

    with settings_store() as (_, store):
        events = store.list_events(types=[EventType.SETTINGS_CHANGED])
    for event in events[-limit:]:
        typer.echo(f"{event.created_at:%Y-%m-%d %H:%M:%S} {event.message}")
    if not events:
        typer.echo("no live settings changes yet")
