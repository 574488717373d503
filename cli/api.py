"""`kestrel api`: the operator API (REST, WebSocket, MCP, dashboard) and its keys.

`kestrel api` serves on 127.0.0.1:8765 unless told otherwise. `kestrel api key create NAME
--tier READ --tier DEMO_TRADE` prints the secret ONCE (only its argon2 hash is stored);
`kestrel api key list`, `kestrel api key revoke NAME|ID`. `kestrel api mcp --stdio` serves
MCP on stdin/stdout for a local assistant, as the key in KESTREL_API_KEY.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli._common import actor, app, fail, load_cli_settings

api_app = typer.Typer(
    help="The operator API: serve it (no subcommand), manage its keys, or serve MCP on stdio.",
    invoke_without_command=True,
)
app.add_typer(api_app, name="api")
key_app = typer.Typer(
    help="API keys: create (secret shown once), list, revoke.", no_args_is_help=True
)
api_app.add_typer(key_app, name="key")


@api_app.callback()
def serve(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="listen address (default: this machine only)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    rate: Annotated[float, typer.Option(help="requests a second per key (refill)")] = 10.0,
    burst: Annotated[int, typer.Option(help="requests a key may make at once")] = 60,
    access_ttl: Annotated[
        int, typer.Option(help="access token lifetime in seconds (10..3600)")
    ] = 300,
) -> None:
    """Serve the API and the dashboard (uvicorn) for the configured mode."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

    from api import create_app
    from api.context import ApiConfig
    from api.production import production_context

    settings = load_cli_settings()
    ctx = production_context(
        settings,
        ApiConfig(host=host, port=port, rate_per_s=rate, burst=burst, access_ttl_s=access_ttl),
    )
    typer.echo(f"kestrel api ({settings.mode.value}) on http://{host}:{port}/ (docs: /docs)")
    # frames far over the API's own limit are refused by the protocol layer, unread
    uvicorn.run(
        create_app(ctx), host=host, port=port, log_level="info", workers=1, ws_max_size=2**20
    )


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Argument(help="who or what uses it, e.g. dashboard, claude")],
    tier: Annotated[
        list[str], typer.Option("--tier", help="READ, DEMO_TRADE, REAL_TRADE, ADMIN (repeat)")
    ],
    days: Annotated[int | None, typer.Option(help="expires after this many days")] = None,
    allow_ip: Annotated[
        list[str] | None, typer.Option("--allow-ip", help="only from this IP/CIDR (repeat)")
    ] = None,
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from api.auth.keys import KeyBook
    from kestrel.mode import trading_mode
    from kestrel.store import open_store

    settings = load_cli_settings()
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            made = KeyBook(store).create(
                name, tier, by=actor(), expires_at=expires, allowed_ips=allow_ip or []
            )
        except ValueError as exc:
            raise fail(str(exc).splitlines()[0], 2) from None
        finally:
            store.close()
    typer.echo(
        f"key {made.key.name} ({made.key.key_id}) for {settings.mode.value}: "
        f"{', '.join(t.value for t in made.key.tiers)}"
    )
    typer.echo(f"secret (shown once, store it now): {made.secret}")


@key_app.command("list")
def key_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every key of the configured mode (never a secret or hash)."""
    from api.auth.keys import KeyBook
    from kestrel.store import open_store

    settings = load_cli_settings()
    store = open_store(settings, settings.mode)
    try:
        keys = KeyBook(store).list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([k.public() for k in keys], indent=2, default=str))
        return
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        expires = f", expires {key.expires_at:%Y-%m-%d}" if key.expires_at else ""
        ips = f", from {' '.join(key.allowed_ips)}" if key.allowed_ips else ""
        typer.echo(
            f"{key.key_id} {key.name}: {','.join(t.value for t in key.tiers)} "
            f"[{state}{expires}{ips}]"
        )
    if not keys:
        typer.echo("no API keys; create one with `kestrel api key create NAME --tier READ`")


@key_app.command("revoke")
def key_revoke(ref: Annotated[str, typer.Argument(help="the key's name or id")]) -> None:
    """Revoke a key: its tokens stop working at once."""
    from api.auth.keys import KeyBook
    from kestrel.mode import trading_mode
    from kestrel.store import open_store

    settings = load_cli_settings()
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            key = KeyBook(store).revoke(ref, by=actor())
        except ValueError as exc:
            raise fail(str(exc), 1) from None
        finally:
            store.close()
    typer.echo(f"key {key.name} ({key.key_id}) revoked")


@api_app.command("mcp")
def mcp_cmd(
    stdio: Annotated[bool, typer.Option("--stdio", help="serve MCP on stdin/stdout")] = False,
) -> None:
    """Serve the MCP tools on stdio as the key in KESTREL_API_KEY (HTTP: `kestrel api`, /mcp/)."""
    if not stdio:
        raise fail("only --stdio here; streamable HTTP is served by `kestrel api` at /mcp/", 2)
    import anyio

    from api.auth.tiers import AuthError
    from api.mcp_server import build_mcp, key_caller
    from api.production import production_context

    secret = os.environ.get("KESTREL_API_KEY", "")
    if not secret:
        raise fail("set KESTREL_API_KEY to an API key (kestrel api key create)", 2)
    settings = load_cli_settings()
    ctx = production_context(settings)
    try:
        caller = key_caller(ctx, secret)
    except AuthError as exc:
        raise fail(str(exc), 1) from None
    anyio.run(build_mcp(ctx, stdio=caller).run_stdio_async)
