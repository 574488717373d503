"""Operator controls: emergency stop / resume, status, and the effective settings."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._common import app, load_cli_settings


@app.command()
def stop(reason: Annotated[str, typer.Option(help="why")] = "manual stop from CLI") -> None:
    """Set the emergency stop: no trading cycle places an order until `kestrel resume`."""
    _set_stop(active=True, reason=reason)


@app.command()
def resume(reason: Annotated[str, typer.Option(help="why")] = "resumed from CLI") -> None:
    """Clear the emergency stop."""
    _set_stop(active=False, reason=reason)


def _set_stop(*, active: bool, reason: str) -> None:
    from kestrel.mode import trading_mode
    from kestrel.risk.controls import set_emergency_stop
    from kestrel.store.router import StoreRouter

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            state = set_emergency_stop(store, active=active, reason=reason, by="cli")
        finally:
            store.close()
    typer.echo(f"emergency stop ({settings.mode.value}): {'ON' if state.active else 'off'}")


@app.command()
def status() -> None:
    """Mode, emergency stop, live orders and open positions from the store."""
    from kestrel.execution.trailing import levels_text
    from kestrel.mode import trading_mode
    from kestrel.models import PositionStatus
    from kestrel.risk.controls import emergency_stop_state
    from kestrel.store.router import StoreRouter

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            stop_state = emergency_stop_state(store)
            live = list(store.iter_live_orders())
            positions = store.list_positions(status=PositionStatus.OPEN)
        finally:
            store.close()
    typer.echo(f"mode: {settings.mode.value}")
    stop_text = f"ON ({stop_state.reason})" if stop_state.active else "off"
    typer.echo(f"emergency stop: {stop_text}")
    typer.echo(f"live orders: {len(live)}")
    for order in live:
        typer.echo(
            f"  {order.client_order_id} {order.symbol} {order.side} {order.amount} {order.status}"
        )
    typer.echo(f"open positions: {len(positions)}")
    for position in positions:
        typer.echo(
            f"  {position.symbol} {position.amount} @ {position.avg_entry_price}; "
            f"{levels_text(position)}"
        )


@app.command("config")
def show_config() -> None:
    """Validate the settings and print them (secrets masked)."""
    typer.echo(load_cli_settings().model_dump_json(indent=2))
