"""`kestrel cycle` and `kestrel sync`: one run of the flow the job's deployment runs, here,
with the user's settings."""

from __future__ import annotations

import typer

from cli._common import app, flow_outcome, load_cli_settings, prepare_prefect


@app.command()
def cycle() -> None:
    """Run one trading cycle over the watchlist (settings from env / kestrel.toml)."""
    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    from flows.trading_cycle import trading_cycle

    state = trading_cycle(config=settings.model_dump(mode="json"), return_state=True)
    for decision in flow_outcome(state):
        codes = ", ".join(r.code.value for r in decision.reasons)
        typer.echo(f"{decision.symbol}: {decision.action.value} ({codes})")


@app.command()
def sync() -> None:
    """Reconcile every live order with the exchange once."""
    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    from flows.upkeep import order_sync

    state = order_sync(config=settings.model_dump(mode="json"), return_state=True)
    typer.echo(flow_outcome(state).model_dump_json(indent=2))
