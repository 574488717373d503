"""`kestrel order ...`: manual orders, cancels, closes, moved stops and the DEMO paper reset.

Every action goes through kestrel.manual, i.e. the same risk rules and order path as the
cycle, with the live settings applied. In REAL mode `place`, `close`, `close-all` and
`move-stop` print a preview and a one-time token; run the same command again with
`--confirm TOKEN` (or `kestrel order confirm TOKEN`) within the token's lifetime to act.

Exit codes: 0 done (or a preview / a token issued), 1 refused (blocked by risk, bad or expired
token, nothing to cancel), 2 bad arguments or settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli._common import actor, app, exchange_down, fail, load_cli_settings
from kestrel.mode import TradingMode

if TYPE_CHECKING:
    from kestrel.config.settings import KestrelSettings
    from kestrel.manual import ManualOutcome
    from kestrel.runtime import Runtime

order_app = typer.Typer(
    help="Manual trading: place, cancel, close, close-all, move-stop, confirm; reset (DEMO paper "
    "account).",
    no_args_is_help=True,
)
app.add_typer(order_app, name="order")

RequestIdOption = Annotated[
    str | None,
    typer.Option(
        "--request-id",
        help="idempotency key: the same id never places twice (default: a new one, printed)",
    ),
]
ConfirmOption = Annotated[
    str | None, typer.Option("--confirm", help="REAL mode: the token the preview printed")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="show the preview and the verdict; place nothing")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the outcome as JSON")]


@contextmanager
def manual_runtime() -> Iterator[Runtime]:
    """The runtime of the configured mode with the live settings applied; closed after."""
    from kestrel.errors import ConfigError, KestrelError
    from kestrel.mode import trading_mode
    from kestrel.operator.live import resolve_settings
    from kestrel.runtime import build_runtime

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        try:
            effective = resolve_settings(settings)
            rt = build_runtime(effective)
        except ConfigError as exc:
            raise fail(str(exc), 2) from None
        except KestrelError as exc:
            raise fail(str(exc), 1) from None
        try:
            yield rt
        finally:
            rt.store.close()


def _decimal(name: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise fail(f"{name}: {value!r} is not a number", 2) from None
    if not parsed.is_finite() or parsed <= 0:
        raise fail(f"{name}: must be a number > 0, got {value}", 2)
    return parsed


def _request(kind: str, **fields: Any) -> Any:
    """Build and validate a request; a bad argument exits 2 naming the field."""
    from pydantic import ValidationError

    from kestrel.manual import (
        CloseAllRequest,
        ClosePositionRequest,
        MoveLevelsRequest,
        PlaceOrderRequest,
    )

    model: (
        type[PlaceOrderRequest]
        | type[ClosePositionRequest]
        | type[CloseAllRequest]
        | type[MoveLevelsRequest]
    )
    if kind == "place":
        model = PlaceOrderRequest
    elif kind == "close":
        model = ClosePositionRequest
    elif kind == "move_levels":
        model = MoveLevelsRequest
    else:
        model = CloseAllRequest
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(problems.replace("Value error, ", ""), 2) from None


def _act[T](action: Callable[[Runtime], T], *refusals: type[Exception]) -> T:
    """Run `action` on the manual runtime (closed after). A ManualError, or one of
    `refusals`, exits 1 with its message; any other Kestrel error exits 1 naming its class."""
    from kestrel.errors import KestrelError, ManualError
    from kestrel.exchange.errors import is_transient

    plain: tuple[type[Exception], ...] = (ManualError, *refusals)
    with manual_runtime() as rt:
        try:
            return action(rt)
        except plain as exc:
            raise fail(str(exc), 1) from None
        except Exception as exc:
            if is_transient(exc):  # the exchange stayed down: one line, no traceback
                raise exchange_down(exc) from None
            if isinstance(exc, KestrelError):
                raise fail(f"{type(exc).__name__}: {exc}", 1) from None
            raise


def _run(request: Any, *, confirm: str | None, dry_run: bool, as_json: bool) -> None:
    from kestrel.errors import ConfigError
    from kestrel.manual import submit

    outcome = _act(
        lambda rt: submit(rt, request, actor=actor(), confirm=confirm, dry_run=dry_run),
        ConfigError,
    )
    _show(outcome, as_json)


def _show(outcome: ManualOutcome, as_json: bool) -> None:
    from kestrel.manual import OutcomeStatus
    from kestrel.manual.render import outcome_lines

    if as_json:
        typer.echo(outcome.model_dump_json(indent=2))
    else:
        for line in outcome_lines(outcome):
            typer.echo(line)
        if outcome.status is OutcomeStatus.NEEDS_CONFIRMATION:
            typer.echo("run the same command again with --confirm <token> to act")
    if outcome.status is OutcomeStatus.BLOCKED or outcome.errors:
        raise typer.Exit(1)


@order_app.command("place")
def place_cmd(
    symbol: Annotated[str, typer.Argument(help="e.g. BTC/USDT (must be on the watchlist)")],
    side: Annotated[str, typer.Argument(help="buy or sell")],
    amount: Annotated[str, typer.Argument(help="in the base currency, or quote with --quote")],
    quote: Annotated[
        bool, typer.Option("--quote", help="AMOUNT is in the quote currency (e.g. USDT)")
    ] = False,
    limit: Annotated[
        str | None, typer.Option("--limit", help="limit price (default: a market order)")
    ] = None,
    stop_loss: Annotated[str | None, typer.Option("--sl", help="stop-loss price (buys)")] = None,
    take_profit: Annotated[
        str | None, typer.Option("--tp", help="take-profit price (buys)")
    ] = None,
    request_id: RequestIdOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Place a market or limit order through the cycle's risk rules and order path."""
    if side.lower() not in ("buy", "sell"):
        raise fail(f"side must be buy or sell, not {side!r}", 2)
    request = _request(
        "place",
        symbol=symbol,
        side=side.lower(),
        amount=_decimal("amount", amount),
        amount_in="quote" if quote else "base",
        type="limit" if limit is not None else "market",
        price=_decimal("--limit", limit),
        stop_loss=_decimal("--sl", stop_loss),
        take_profit=_decimal("--tp", take_profit),
        request_id=request_id,
    )
    _run(request, confirm=confirm, dry_run=dry_run, as_json=as_json)


@order_app.command("close")
def close_cmd(
    symbol: Annotated[str, typer.Argument(help="the position's symbol, e.g. BTC/USDT")],
    percent: Annotated[
        str | None, typer.Option("--percent", help="close this % of the position (default 100)")
    ] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="close this base amount instead")
    ] = None,
    request_id: RequestIdOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Close all or part of an open position with a market exit."""
    if percent is not None and amount is not None:
        raise fail("give --percent or --amount, not both", 2)
    share = _decimal("--percent", percent)
    if share is not None and share > 100:
        raise fail(f"--percent must be in (0, 100], got {percent}", 2)
    request = _request(
        "close",
        symbol=symbol,
        fraction=share / 100 if share is not None else None,
        amount=_decimal("--amount", amount),
        request_id=request_id,
    )
    _run(request, confirm=confirm, dry_run=dry_run, as_json=as_json)


@order_app.command("close-all")
def close_all_cmd(
    request_id: RequestIdOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Close every open position with market exits."""
    _run(
        _request("close_all", request_id=request_id),
        confirm=confirm,
        dry_run=dry_run,
        as_json=as_json,
    )


@order_app.command("move-stop")
def move_stop_cmd(
    symbol: Annotated[str, typer.Argument(help="the position's symbol, e.g. BTC/USDT")],
    stop_loss: Annotated[
        str | None, typer.Option("--stop-loss", "--sl", help="the new stop-loss price")
    ] = None,
    take_profit: Annotated[
        str | None, typer.Option("--take-profit", "--tp", help="the new take-profit price")
    ] = None,
    trail: Annotated[
        str | None,
        typer.Option("--trail", help="trailing stop: % below the high the stop follows; 0: off"),
    ] = None,
    trail_from: Annotated[
        str | None,
        typer.Option("--trail-from", help="profit % at which trailing starts (default 0)"),
    ] = None,
    request_id: RequestIdOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move the stop-loss / take-profit of an open position, or set its trailing stop. A stop
    order resting on the exchange is replaced. REAL: preview, then --confirm TOKEN."""
    request = _request(
        "move_levels",
        symbol=symbol,
        stop_loss=_decimal("--stop-loss", stop_loss),
        take_profit=_decimal("--take-profit", take_profit),
        trailing_distance_pct=_percent("--trail", trail),
        trailing_activation_pct=_percent("--trail-from", trail_from),
        request_id=request_id,
    )
    _run(request, confirm=confirm, dry_run=dry_run, as_json=as_json)


def _percent(name: str, value: str | None) -> Decimal | None:
    """A percentage where 0 means something (trailing off, or active at once)."""
    if value is None:
        return None
    if value.strip() in ("0", "0%"):
        return Decimal(0)
    return _decimal(name, value.strip().removesuffix("%"))


@order_app.command("confirm")
def confirm_cmd(
    token: Annotated[str, typer.Argument(help="the token a REAL-mode preview printed")],
    as_json: JsonOption = False,
) -> None:
    """Run exactly the action a token was issued for."""
    from kestrel.manual import confirm_token

    _show(_act(lambda rt: confirm_token(rt, token, actor=actor())), as_json)


@order_app.command("cancel")
def cancel_cmd(
    order: Annotated[str, typer.Argument(help="client order id or exchange order id")],
) -> None:
    """Cancel a live (open or partially filled) order."""
    from kestrel.manual import cancel_order

    outcome = _act(lambda rt: cancel_order(rt, order, actor=actor()))
    typer.echo(outcome.message)
    if not outcome.canceled:
        raise typer.Exit(1)


@order_app.command("reset")
def reset_cmd(
    balance: Annotated[str, typer.Option("--balance", help="new starting balance (quote)")],
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra", help="other starting balances, e.g. --extra BTC=0.5 (repeat)"),
    ] = None,
    no_extras: Annotated[
        bool, typer.Option("--no-extras", help="start with the quote balance only")
    ] = False,
    reason: Annotated[str, typer.Option(help="why (kept in the archive and the event)")] = "",
    yes: Annotated[bool, typer.Option("--yes", help="really reset (required)")] = False,
) -> None:
    """DEMO only: archive the paper books and restart the paper account from a balance."""
    from kestrel.errors import KestrelError, ManualError
    from kestrel.manual import reset_paper_account
    from kestrel.manual.render import reset_lines
    from kestrel.money import to_decimal

    start = _decimal("--balance", balance)
    assert start is not None
    extras: dict[str, Decimal] | None = None
    if no_extras:
        extras = {}
    if extra:
        extras = {}
        for pair in extra:
            currency, sep, value = pair.partition("=")
            if not sep or not currency.strip():
                raise fail(f"--extra takes CURRENCY=AMOUNT, e.g. BTC=0.5; got {pair!r}", 2)
            try:
                extras[currency.strip().upper()] = to_decimal(value.strip())
            except ValueError:
                raise fail(f"--extra {pair}: {value!r} is not a number", 2) from None
    if not yes:
        raise fail("this archives the paper books and cancels every paper order; add --yes", 2)
    settings = load_cli_settings()
    if settings.mode is not TradingMode.DEMO:
        _refuse_reset_in_real(settings, start)
    with manual_runtime() as rt:

        def price_of(symbol: str) -> Decimal | None:
            return to_decimal(rt.exchange.fetch_ticker(symbol)["last"])

        try:
            outcome = reset_paper_account(
                rt.store,
                rt.settings,
                balance=start,
                actor=actor(),
                extra_balances=extras,
                reason=reason,
                price_of=price_of,
            )
        except ManualError as exc:
            raise fail(str(exc), 2) from None
        except KestrelError as exc:
            raise fail(str(exc), 1) from None
    for line in reset_lines(outcome):
        typer.echo(line)


def _refuse_reset_in_real(settings: KestrelSettings, balance: Decimal) -> None:
    """Record the refusal (a SECURITY event) without building a REAL wallet, and exit 1."""
    from kestrel.errors import KestrelError
    from kestrel.manual import reset_paper_account
    from kestrel.mode import trading_mode
    from kestrel.store import open_store

    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            reset_paper_account(store, settings, balance=balance, actor=actor())
        except KestrelError as exc:
            raise fail(str(exc), 1) from None
        finally:
            store.close()
    raise fail("paper account reset is DEMO only", 1)  # pragma: no cover - refused above
