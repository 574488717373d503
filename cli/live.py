"""`kestrel live`: what is live now (no subcommand: orders, protection, today's PnL, from the
store), and `kestrel live run`: the live engine (flows/live.py) in this process: streams in,
a cycle per closed candle, syncs on account events, exits on ticks."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._common import app, fail, load_cli_settings, prepare_prefect

live_app = typer.Typer(
    help="What is live now (no subcommand), or `run` the live engine.",
    invoke_without_command=True,
)
app.add_typer(live_app, name="live")


@live_app.callback()
def live(ctx: typer.Context) -> None:
    """Live orders (with where their status came from), open positions with their
    protection, and today's PnL, from the store (no exchange request)."""
    if ctx.invoked_subcommand is None:
        from cli.orders import live_status

        live_status()


@live_app.command("run")
def run(
    run_for: Annotated[
        float | None,
        typer.Option("--for", min=1, help="stop after this many seconds (default: until Ctrl-C)"),
    ] = None,
    recycle_after_cycles: Annotated[
        int | None,
        typer.Option(
            "--recycle-after-cycles",
            min=1,
            help="end (Completed) after this many cycles, for a fresh process to resume",
        ),
    ] = None,
    recycle_above_mb: Annotated[
        float | None,
        typer.Option(
            "--recycle-above-mb",
            min=1,
            help="end (Completed) once resident memory exceeds this many MiB",
        ),
    ] = None,
) -> None:
    """Run the live engine here: one process, every step a Prefect subflow or task. REAL
    trades the account (keys); DEMO the paper wallet on live public data (no keys). With a
    recycle bound it ends between cycles; run it under a supervisor (or as a deployment) that
    starts it again: the new process resumes after the newest claimed candle."""
    from kestrel.errors import ConfigError
    from kestrel.live.recycle import RecycleBound

    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    from flows.live import live_engine  # after prepare_prefect

    recycle = RecycleBound(after_cycles=recycle_after_cycles, above_rss_mb=recycle_above_mb)
    try:
        summary = live_engine(
            config=settings.model_dump(mode="json"), run_for_s=run_for, recycle=recycle
        )
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(summary)
