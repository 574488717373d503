"""The `kestrel` command line. Imports are lazy: `kestrel --help` loads neither prefect,
pandas, pandas-ta nor ccxt, so it answers at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from kestrel.settings import KestrelSettings
    from kestrel.summary import SessionSummary

app = typer.Typer(
    name="kestrel",
    help="Kestrel: an automated crypto-trading pipeline on Prefect. DEMO is the default mode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings() -> KestrelSettings:
    from kestrel.errors import ConfigError
    from kestrel.settings import load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def demo(
    cycles: Annotated[int, typer.Option(min=1, max=100_000, help="trading cycles to run")] = 200,
    market: Annotated[
        str, typer.Option(help="auto | replay | simulated (auto: replay ../shared data if found)")
    ] = "auto",
    replay_dir: Annotated[
        Path | None, typer.Option(help="folder of <BASE>_<QUOTE>-<tf>.csv candles")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="where demo runs keep their books")] = Path(
        ".kestrel"
    ),
) -> None:
    """Run a DEMO paper-trading session and print its reconciled summary."""
    if market not in ("auto", "replay", "simulated"):
        raise _fail(f"--market must be auto, replay or simulated, not {market!r}", 2)
    if replay_dir is not None and not replay_dir.is_dir():
        raise _fail(f"--replay-dir {replay_dir} is not a folder", 2)
    from kestrel.demo import demo_settings, fresh_run_dir

    run_dir = fresh_run_dir(data_dir.resolve())
    os_env_prefect_home(data_dir.resolve())
    mode: Literal["auto", "replay", "simulated"] = market  # type: ignore[assignment]
    settings = demo_settings(data_dir=run_dir, market=mode, replay_dir=replay_dir)
    typer.echo(f"Kestrel demo: {cycles} cycles, books in {run_dir}")
    typer.echo("Starting Prefect (the first start on a new machine can take a minute)...")
    from flows.demo import demo_session

    summary = demo_session(config=settings.model_dump(mode="json"), cycles=cycles)
    print_summary(summary)
    if not summary.reconciled:
        raise _fail("the books do not reconcile with the paper wallet", 3)


def os_env_prefect_home(data_dir: Path) -> None:
    from flows._env import configure_prefect_env

    configure_prefect_env(data_dir)


def print_summary(summary: SessionSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    from kestrel.summary import summary_rows

    console = Console()
    console.print(
        f"\n[bold]DEMO session[/bold]: {summary.cycles} cycles on {summary.market_data}; "
        f"orders {summary.orders_by_status or '{}'}; fills {summary.fills}"
    )
    if summary.open_positions:
        positions = Table(title="Open positions")
        for column in ("symbol", "amount", "avg entry", "last", "unrealized PnL"):
            positions.add_column(column, justify="right")
        for line in summary.open_positions:
            positions.add_row(
                line.symbol,
                str(line.amount),
                f"{line.avg_entry_price:.8g}",
                str(line.last_price),
                f"{line.unrealized_pnl:.8f}",
            )
        console.print(positions)
    rows = summary_rows(summary)
    table = Table(title="Books per currency (start + realized - fees - held cost + held = cash)")
    for column in rows[0] if rows else []:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    verdict = "[green]RECONCILED[/green]" if summary.reconciled else "[red]NOT RECONCILED[/red]"
    console.print(f"Books vs wallet: {verdict}")


@app.command()
def cycle() -> None:
    """Run one trading cycle over the watchlist (settings from env / kestrel.toml)."""
    settings = _settings()
    os_env_prefect_home(settings.data_dir.resolve())
    from flows.trading_cycle import trading_cycle

    for decision in trading_cycle(config=settings.model_dump(mode="json")):
        codes = ", ".join(r.code.value for r in decision.reasons)
        typer.echo(f"{decision.symbol}: {decision.action.value} ({codes})")


@app.command()
def sync() -> None:
    """Reconcile every live order with the exchange once."""
    settings = _settings()
    os_env_prefect_home(settings.data_dir.resolve())
    from flows.upkeep import order_sync

    typer.echo(order_sync(config=settings.model_dump(mode="json")).model_dump_json(indent=2))


@app.command()
def stop(reason: Annotated[str, typer.Option(help="why")] = "manual stop from CLI") -> None:
    """Set the emergency stop: no trading cycle places an order until `kestrel resume`."""
    _set_stop(active=True, reason=reason)


@app.command()
def resume(reason: Annotated[str, typer.Option(help="why")] = "resumed from CLI") -> None:
    """Clear the emergency stop."""
    _set_stop(active=False, reason=reason)


def _set_stop(*, active: bool, reason: str) -> None:
    from kestrel.controls import set_emergency_stop
    from kestrel.mode import trading_mode
    from kestrel.store.router import StoreRouter

    settings = _settings()
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
    from kestrel.controls import emergency_stop_state
    from kestrel.mode import trading_mode
    from kestrel.models import PositionStatus
    from kestrel.store.router import StoreRouter

    settings = _settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            stop_state = emergency_stop_state(store)
            live = list(store.iter_live_orders())
            positions = store.list_positions(status=PositionStatus.OPEN)
        finally:
            store.close()
    typer.echo(f"mode: {settings.mode.value}")
    typer.echo(
        f"emergency stop: {'ON (' + stop_state.reason + ')' if stop_state.active else 'off'}"
    )
    typer.echo(f"live orders: {len(live)}")
    for order in live:
        typer.echo(
            f"  {order.client_order_id} {order.symbol} {order.side} {order.amount} {order.status}"
        )
    typer.echo(f"open positions: {len(positions)}")
    for position in positions:
        typer.echo(f"  {position.symbol} {position.amount} @ {position.avg_entry_price}")


@app.command("config")
def show_config() -> None:
    """Validate the settings and print them (secrets masked)."""
    typer.echo(_settings().model_dump_json(indent=2))


def main() -> None:
    app(prog_name="kestrel")


if __name__ == "__main__":
    sys.exit(main())
