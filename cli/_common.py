"""Shared CLI plumbing: the typer app, settings loading with clear errors, lazy Prefect env."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from kestrel.config.settings import KestrelSettings

app = typer.Typer(
    name="kestrel",
    help="Kestrel: an automated crypto-trading pipeline on Prefect. DEMO is the default mode.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def load_cli_settings(config: Path | None = None) -> KestrelSettings:
    """Settings from env / kestrel.toml (or the file `config` names, for this call only: the
    process environment is left as it was); an invalid one exits 2 with the field named."""
    from kestrel.config.settings import CONFIG_ENV, load_settings
    from kestrel.errors import ConfigError

    before = os.environ.get(CONFIG_ENV)
    if config is not None:
        if not config.is_file():
            typer.echo(f"--config {config}: no such file", err=True)
            raise typer.Exit(2)
        os.environ[CONFIG_ENV] = str(config)
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        if config is not None:
            if before is None:
                os.environ.pop(CONFIG_ENV, None)
            else:
                os.environ[CONFIG_ENV] = before


def actor() -> str:
    """Who acted, for the audit trail of a CLI change: `cli:<user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def prepare_prefect(data_dir: Path) -> None:
    """Prefect environment defaults, set before prefect is imported
    (kestrel/config/prefect_env.py)."""
    from kestrel.config.prefect_env import configure_prefect_env

    configure_prefect_env(data_dir)


def flow_outcome(state: Any) -> Any:
    """A flow run's result, for a command that ran it with `return_state=True`. A run that
    ended on an expected outcome (a stand-down, the emergency stop) prints its one-line
    message; one that did not complete (a bad setting, the exchange down past the retries)
    prints it as the error and exits 2 (cancelled) or 1 (failed), without a traceback."""
    from prefect.client.schemas.objects import State

    assert isinstance(state, State)
    if state.is_completed():
        if state.message:
            typer.echo(state.message, err=True)
        return state.result()
    raise fail(state.message or state.type.value, 2 if state.is_cancelled() else 1)


def exchange_down(exc: BaseException) -> typer.Exit:
    """One line for an exchange that stayed unavailable: what failed and what happens now;
    the traceback goes to the `kestrel.cli` logger at DEBUG."""
    import logging

    logging.getLogger("kestrel.cli").debug("exchange unavailable", exc_info=exc)
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return fail(
        f"the exchange is unavailable ({type(exc).__name__}: {detail}); if an order went "
        "out, the next order sync finds it by its client order id and books it, and the same "
        "request id never places it twice"
    )
