"""Running Kestrel on Prefect: `kestrel serve` (all in one process, with a local server and
UI when none is configured), `kestrel deploy` (work pool, block types, `prefect deploy --all`,
dead-man's switch on a server of your own), `kestrel blocks register`, `kestrel deadman`.

Imports are lazy, as everywhere in the CLI: Prefect loads only once a command runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli._common import app, fail, load_cli_settings, prepare_prefect

if TYPE_CHECKING:
    from kestrel.config.settings import KestrelSettings

WORK_POOL = "kestrel-process"
blocks_app = typer.Typer(help="Kestrel's Prefect block types.", no_args_is_help=True)
deadman_app = typer.Typer(help="The dead-man's switch (Prefect automations).", no_args_is_help=True)
app.add_typer(blocks_app, name="blocks")
app.add_typer(deadman_app, name="deadman")


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile, if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


@contextmanager
def prefect_api(url: str) -> Iterator[None]:
    """Point this process (and the runs it starts) at `url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = url
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def require_api() -> str:
    url = configured_api_url()
    if not url:
        raise fail(
            "no Prefect API configured: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api "
            "after `prefect server start`), or use `kestrel serve`, which starts one",
            2,
        )
    return url


def _terminate_on(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@app.command()
def serve(
    port: Annotated[
        int, typer.Option(help="local server port, if one is started (busy: any free one)")
    ] = 4200,
    limit: Annotated[
        int, typer.Option(min=1, max=64, help="flow runs at most at once (each is a process)")
    ] = 8,
    deployment: Annotated[
        list[str] | None,
        typer.Option("--deployment", "-d", help="serve only these (repeatable); default all"),
    ] = None,
    deadman: Annotated[bool, typer.Option(help="install the dead-man's switch automations")] = True,
    ui: Annotated[bool, typer.Option(help="the Prefect UI on the local server")] = True,
    poll: Annotated[
        float,
        typer.Option(min=1, max=60, help="seconds between looks for runs to start (UI runs)"),
    ] = 2.0,
) -> None:
    """Serve every deployment of prefect.yaml in this process, on their default parameters.

    Without PREFECT_API_URL a local `prefect server start` (SQLite, 127.0.0.1, with the UI)
    is started first, supervised, and stopped when this command ends (Ctrl-C / SIGTERM)."""
    settings = load_cli_settings()
    data_dir = settings.data_dir.resolve()
    prepare_prefect(data_dir)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate_on)
    from deployments.server import LocalPrefectServer

    url = configured_api_url()
    server: LocalPrefectServer | None = None
    if url is None:
        server = LocalPrefectServer(data_dir / "prefect-server", preferred_port=port, ui=ui)
        typer.echo(f"Starting a local Prefect server on {server.url} (log: {server.log_path})")
        server.start()
        url = server.api_url
        if ui:
            typer.echo(f"Prefect UI: {server.url}")
    try:
        with prefect_api(url):
            _serve(settings, limit=limit, only=deployment or [], deadman=deadman, poll=poll)
    finally:
        if server is not None:
            typer.echo("Stopping the local Prefect server")
            server.stop()


def _serve(
    settings: KestrelSettings, *, limit: int, only: list[str], deadman: bool, poll: float
) -> None:
    from prefect import serve as prefect_serve

    from blocks.registry import register_block_types
    from deployments.spec import load_specs, runner_deployment
    from deployments.startup import StartupFailed, retry_startup, wait_ready

    specs = [s for s in load_specs() if not only or s.name in only]
    unknown = set(only) - {s.name for s in specs}
    if unknown:
        raise fail(f"no such deployment in prefect.yaml: {', '.join(sorted(unknown))}", 2)
    deployments = [runner_deployment(spec) for spec in specs]
    try:  # a fresh server may answer /api/health before its database does
        wait_ready()
        retry_startup("registering block types", register_block_types)
        for item in deployments:  # so the dead-man's switch can find them before serving
            retry_startup(f"creating deployment {item.name}", item.apply)
        if deadman:
            retry_startup("installing the dead-man's switch", lambda: _install_deadman(settings))
    except StartupFailed as exc:
        raise fail(str(exc)) from None
    typer.echo(f"Serving {len(deployments)} deployments (at most {limit} runs at once)")
    # query_seconds: Prefect's default (10 s) would delay an emergency stop run from the UI.
    prefect_serve(*deployments, limit=limit, query_seconds=poll)


def _install_deadman(settings: KestrelSettings) -> dict[str, Any]:
    from deployments.automations import install_deadman

    token = settings.telegram.bot_token
    result = install_deadman(
        telegram=settings.telegram,
        token=token.get_secret_value() if token is not None else None,
        cycle_after_s=settings.ops.deadman_cycle_after_s,
        sync_after_s=settings.ops.deadman_sync_after_s,
        engine_after_s=settings.ops.deadman_engine_after_s,
    )
    alerts = "Telegram" if result["telegram"] else "the Prefect UI only (no Telegram bot set)"
    typer.echo(
        f"Dead-man's switch: {len(result['automations'])} automations, alerts to {alerts}; "
        f"watching {', '.join(result['watched']) or 'nothing yet'}"
    )
    return result


def ensure_work_pool(name: str) -> bool:
    """Create a process work pool unless it exists; True if created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
            return True


@app.command()
def deploy(
    pool: Annotated[str, typer.Option(help="process work pool (created if missing)")] = WORK_POOL,
    deadman: Annotated[bool, typer.Option(help="install the dead-man's switch")] = True,
) -> None:
    """On the configured Prefect server: the work pool, block types, `prefect deploy --all`
    and the dead-man's switch. Then start a worker: prefect worker start --pool kestrel-process"""
    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    url = require_api()
    from blocks.registry import register_block_types
    from deployments.startup import StartupFailed, retry_startup, wait_ready
    from deployments.steps import project_root

    try:
        wait_ready()
        if retry_startup(f"creating work pool {pool}", lambda: ensure_work_pool(pool)):
            typer.echo(f"created work pool {pool}")
        slugs = retry_startup("registering block types", register_block_types)
    except StartupFailed as exc:
        raise fail(str(exc)) from None
    typer.echo(f"block types: {', '.join(slugs)}")
    env = {**os.environ, "PREFECT_API_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=project_root(),
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise fail(f"prefect deploy --all exited with {done.returncode}", done.returncode)
    if deadman:
        _install_deadman(settings)


@blocks_app.command("register")
def blocks_register() -> None:
    """Register Kestrel's block types with the configured Prefect server (idempotent)."""
    prepare_prefect(load_cli_settings().data_dir.resolve())
    require_api()
    from blocks.registry import register_block_types
    from deployments.startup import StartupFailed, retry_startup

    try:
        slugs = retry_startup("registering block types", register_block_types)
    except StartupFailed as exc:
        raise fail(str(exc)) from None
    for slug in slugs:
        typer.echo(f"registered {slug}")


@deadman_app.command("install")
def deadman_install(
    cycle_after: Annotated[
        float | None, typer.Option(help="seconds without a completed cycle (default: settings)")
    ] = None,
    sync_after: Annotated[
        float | None,
        typer.Option(help="seconds without a completed order sync (default: settings)"),
    ] = None,
) -> None:
    """Create or update the dead-man's switch automations on the configured server."""
    settings = load_cli_settings()
    prepare_prefect(settings.data_dir.resolve())
    require_api()
    if cycle_after is not None:
        settings.ops.deadman_cycle_after_s = cycle_after
    if sync_after is not None:
        settings.ops.deadman_sync_after_s = sync_after
    _install_deadman(settings)
