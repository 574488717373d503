"""Shared CLI plumbing: the typer app, settings loading with clear errors, lazy Prefect env."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

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


def load_cli_settings() -> KestrelSettings:
    """Settings from env / kestrel.toml; an invalid one exits 2 with the field named."""
    from kestrel.config.settings import load_settings
    from kestrel.errors import ConfigError

    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


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
