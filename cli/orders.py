"""`kestrel sync-loop`, `kestrel monitor`: the order-sync and position-monitor
flows by hand (as their deployments run them: polling for a window under the one-at-a-time
lock), and what is live right now (`kestrel live`, cli/live.py): orders, protection per
position, today's PnL. And `kestrel order write-off`: an UNKNOWN order the operator verified by
hand is not on the exchange (kestrel.manual.write_off)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from cli._common import actor, app, fail, flow_outcome, load_cli_settings, prepare_prefect
from cli.manual import ConfirmOption, JsonOption, _act, order_app

WindowOption = Annotated[
    float, typer.Option("--window", min=0, max=3600, help="keep polling this many seconds")
]
PollOption = Annotated[float, typer.Option("--poll", min=0.2, help="seconds between passes")]


def _run_upkeep(
    name: Literal["order-sync", "position-monitor"], window: float, poll: float
) -> None:
    """Run an upkeep flow here as its deployment does, and print its report."""
    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    from flows.upkeep import order_sync, position_monitor  # after prepare_prefect

    upkeep = {"order-sync": order_sync, "position-monitor": position_monitor}[name]
    state = upkeep(
        config=settings.model_dump(mode="json"), window_s=window, poll_s=poll, return_state=True
    )
    typer.echo(flow_outcome(state).model_dump_json(indent=2, exclude={"last"}))


@app.command("sync-loop")
def sync_loop(window: WindowOption = 60.0, poll: PollOption = 2.0) -> None:
    """Reconcile live orders with the exchange and protect open positions, every --poll s."""
    _run_upkeep("order-sync", window, poll)


@app.command("monitor")
def monitor(window: WindowOption = 60.0, poll: PollOption = 5.0) -> None:
    """Mark positions to market and exit on stop-loss / take-profit / trailing hits."""
    _run_upkeep("position-monitor", window, poll)


def live_status() -> None:
    """Live orders (with where their status came from), open positions with their
    protection, and today's PnL, from the store (no exchange request)."""
    from kestrel.books.ledger import daily_pnl
    from kestrel.execution.trailing import levels_text
    from kestrel.mode import trading_mode
    from kestrel.models import LIVE_STATUSES, OrderRole, PositionStatus, utcnow
    from kestrel.store.router import StoreRouter

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = StoreRouter(settings)
        try:
            orders = store.list_orders(statuses=LIVE_STATUSES)
            positions = store.list_positions(status=PositionStatus.OPEN)
            day = utcnow().date().isoformat()
            pnl = daily_pnl(store, day)
        finally:
            store.close()
    typer.echo(f"mode: {settings.mode.value}; live orders: {len(orders)}")
    for order in orders:
        typer.echo(
            f"  {order.client_order_id} {order.role.value} {order.symbol} {order.side.value} "
            f"{order.filled}/{order.amount} {order.status.value} (via {order.status_source})"
        )
    typer.echo(f"open positions: {len(positions)}")
    stops = {o.position_id: o for o in orders if o.role is OrderRole.STOP_LOSS}
    for position in positions:
        stop = stops.get(position.position_id)
        guard = f"native stop {stop.stop_price}" if stop else "watched by the monitor"
        typer.echo(
            f"  {position.symbol} {position.amount} @ {position.avg_entry_price:.8g} "
            f"{levels_text(position)} ({guard})"
        )
    typer.echo(f"PnL {day}: {pnl['currencies'] if pnl else 'nothing yet'}")


@order_app.command("write-off")
def write_off_cmd(
    client_id: Annotated[str, typer.Argument(help="the UNKNOWN order's client order id")],
    reason: Annotated[
        str, typer.Option("--reason", help="what you verified on the exchange, and how")
    ],
    confirm: ConfirmOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write off an UNKNOWN order you verified by hand is not on the exchange: FAILED (via
    written_off), recorded as an event, the record kept. REAL: preview, then --confirm TOKEN."""
    from pydantic import ValidationError

    from kestrel.manual.write_off import WriteOffRequest, write_off

    try:
        request = WriteOffRequest(client_order_id=client_id, reason=reason)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(problems.replace("Value error, ", ""), 2) from None
    outcome = _act(lambda rt: write_off(rt, request, actor=actor(), confirm=confirm))
    if as_json:
        typer.echo(outcome.model_dump_json(indent=2, exclude={"order"}))
        return
    typer.echo(outcome.message)
    if outcome.token is not None and outcome.expires_at is not None:
        typer.echo(f"token: {outcome.token} (valid until {outcome.expires_at:%H:%M:%S} UTC)")
