"""`kestrel breaker status|reset` and `kestrel strategy`: the circuit breaker and the strategy
each symbol resolves to (`kestrel strategy list|new|check` live in cli/strategy_cmd.py).
Imports stay inside the commands so `kestrel --help` stays fast."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._common import app, fail, load_cli_settings

breaker_app = typer.Typer(
    help="The circuit breaker: trips after consecutive failed orders or losing trades.",
    no_args_is_help=True,
)
app.add_typer(breaker_app, name="breaker")


def _describe(state: object) -> str:
    from kestrel.risk.controls import CircuitBreaker

    assert isinstance(state, CircuitBreaker)
    if not state.active:
        since = f" (last reset by {state.changed_by})" if state.changed_by else ""
        return f"ok{since}; tripped {state.trips} time(s) so far"
    until = state.cool_off_until.isoformat() if state.cool_off_until else "manual reset"
    return f"TRIPPED: {state.reason}; blocks every new order until {until}"


@breaker_app.command("status")
def breaker_status() -> None:
    """Show the breaker (after applying the cool-off and any new streak, as a cycle would)."""
    from kestrel.mode import trading_mode
    from kestrel.risk.breaker import refresh_circuit_breaker
    from kestrel.store.router import StoreRouter

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            state = refresh_circuit_breaker(store, settings.trading.gates)
        finally:
            store.close()
    typer.echo(f"circuit breaker ({settings.mode.value}): {_describe(state)}")


@breaker_app.command("reset")
def breaker_reset(
    reason: Annotated[str, typer.Option(help="why it is safe to trade again")] = "reset from CLI",
) -> None:
    """Reset a tripped breaker now. Earlier failures and losses never count again."""
    from kestrel.mode import trading_mode
    from kestrel.risk.controls import reset_circuit_breaker
    from kestrel.store.router import StoreRouter

    if not reason.strip():
        raise fail("--reason must say why", 2)
    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            state = reset_circuit_breaker(store, reason=reason, by="cli")
        finally:
            store.close()
    typer.echo(f"circuit breaker ({settings.mode.value}): {_describe(state)}")


strategy_app = typer.Typer(
    help="Strategies: without a subcommand, each symbol's profile; list, new, check.",
    invoke_without_command=True,
)
app.add_typer(strategy_app, name="strategy")


@strategy_app.callback()
def strategy(ctx: typer.Context) -> None:
    """Each symbol's strategy profile (and where it came from), levels, and the analysts."""
    if ctx.invoked_subcommand is not None:
        return
    from kestrel.errors import ConfigError
    from kestrel.strategy.resolve import resolve_plans, trailing_for

    settings = load_cli_settings()
    try:
        plans = resolve_plans(settings)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    analysis = settings.trading.analysis
    panel = ", ".join(f"{s.label} (x{s.weight:g})" for s in analysis.panel())
    threshold = (
        f", agreement >= {analysis.agreement_threshold:g}" if analysis.mode == "SWARM" else ""
    )
    typer.echo(f"analysis: {analysis.mode} [{panel}]{threshold}")
    for plan in plans:
        trailing = trailing_for(settings, plan.symbol)
        trail = trailing.describe() if trailing else "no trailing"
        p = plan.profile
        t = p.thresholds
        spec = p.indicators
        pair = (
            (spec.ema_fast, spec.ema_slow)
            if spec.crossover == "ema"
            else (spec.sma_fast, spec.sma_slow)
        )
        note = "" if plan.item.timeframe == p.timeframe else f" (profile's: {p.timeframe})"
        if p.plugin is not None:
            typer.echo(
                f"{plan.symbol}: plugin {p.plugin} ({p.name}) from {plan.source}; timeframe "
                f"{plan.item.timeframe}{note}; stop {p.stop_loss.describe()}, "
                f"target {p.take_profit.describe()}, {trail}"
            )
            continue
        typer.echo(
            f"{plan.symbol}: {p.name} from {plan.source} ({plan.requested}); "
            f"timeframe {plan.item.timeframe}{note}; {spec.crossover.upper()} {pair[0]}/{pair[1]}"
            f", RSI {t.rsi_oversold:g}/{t.rsi_overbought:g}; stop {p.stop_loss.describe()}, "
            f"target {p.take_profit.describe()}, {trail}"
        )
