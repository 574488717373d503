"""The MCP face: the service's operations as typed tools (official `mcp` SDK, MCPServer).

Who is calling: over streamable HTTP, the `Authorization: Bearer <access token>` header of
each request (the same JWT as REST); over stdio, the API key given when the process started
(`KESTREL_API_KEY`), checked once and re-checked on every call (revocation is immediate).
REAL trading tools answer the first call with a preview and a confirmation token and act only
when called again with `confirm` (or through the `confirm` tool). Refusals are tool errors
with the service's message, never a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from api.auth.tiers import AuthError, Principal
from api.context import ApiContext
from api.service import BacktestCall, ManualCall, ServiceError, SettingsCall
from kestrel.operator.risk_changes import SettingsRequest

StdioCaller = Callable[[], Principal]


def _caller(api: ApiContext, ctx: Context, stdio: StdioCaller | None) -> Principal:
    headers = ctx.headers if ctx.request_context.request is not None else None
    if headers is None:
        if stdio is None:
            raise ToolError("not authenticated: no Authorization header")
        return stdio()
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ToolError("no_token: send Authorization: Bearer <access token>")
    request = ctx.request_context.request
    client = getattr(getattr(request, "client", None), "host", "") or ""
    try:
        return api.authenticate(token.strip(), client)
    except AuthError as exc:
        raise ToolError(f"{exc.code}: {exc}") from None


async def _run[T](
    api: ApiContext, ctx: Context, stdio: StdioCaller | None, op: Callable[[Principal], T]
) -> T:
    """Authenticate, then run the blocking service call in a worker thread."""
    try:
        who = await anyio.to_thread.run_sync(lambda: _caller(api, ctx, stdio))
    except AuthError as exc:
        raise ToolError(f"{exc.code}: {exc}") from None
    try:
        return await anyio.to_thread.run_sync(lambda: op(who))
    except (ServiceError, AuthError) as exc:
        raise ToolError(f"{exc.code}: {exc}") from None


def _place(
    symbol: str,
    side: str,
    amount: Decimal,
    amount_in: str,
    price: Decimal | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    request_id: str | None,
) -> dict[str, Any]:
    return {
        "kind": "place",
        "symbol": symbol,
        "side": side,
        "amount": str(amount),
        "amount_in": amount_in,
        "type": "limit" if price is not None else "market",
        "price": None if price is None else str(price),
        "stop_loss": None if stop_loss is None else str(stop_loss),
        "take_profit": None if take_profit is None else str(take_profit),
        "request_id": request_id,
    }


def _clean(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if v is not None}


def build_mcp(api: ApiContext, stdio: StdioCaller | None = None) -> MCPServer:
    """The MCP server over `api`'s service. `stdio`: the caller of a stdio session."""
    svc = api.service
    mode = svc.mode.value
    server = MCPServer(
        name="kestrel",
        instructions=f"Operate the Kestrel trading bot ({mode}). Read tools are safe. REAL "
        "trading tools return a preview and a confirmation token; nothing happens until the "
        "same call is repeated with confirm=<token> (or the confirm tool is called).",
    )

    async def run[T](ctx: Context, op: Callable[[Principal], T]) -> T:
        return await _run(api, ctx, stdio, op)

    # -- read ------------------------------------------------------------------------------
    @server.tool(description="Mode, emergency stop, circuit breaker, live orders, positions.")
    async def status(ctx: Context) -> dict[str, Any]:
        return await run(ctx, svc.status)

    @server.tool(description="Balances from the exchange (free, used, total per currency).")
    async def balances(ctx: Context) -> dict[str, Any]:
        return await run(ctx, svc.balances)

    @server.tool(description="Positions: status OPEN, CLOSED or ALL.")
    async def positions(
        ctx: Context, status: Literal["OPEN", "CLOSED", "ALL"] = "OPEN"
    ) -> list[dict[str, Any]]:
        return await run(ctx, lambda who: svc.positions(who, status))

    @server.tool(description="Open (live) or closed orders, oldest first.")
    async def orders(
        ctx: Context, which: Literal["open", "closed"] = "open", limit: int = 100
    ) -> list[dict[str, Any]]:
        return await run(ctx, lambda who: svc.orders(who, which, limit))

    @server.tool(description="Recent trade decisions with their reasons, newest last.")
    async def decisions(
        ctx: Context, symbol: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        return await run(ctx, lambda who: svc.decisions(who, symbol, limit))

    @server.tool(description="The event log after a sequence number.")
    async def events(ctx: Context, after_seq: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        return await run(ctx, lambda who: svc.events(who, after_seq, limit))

    @server.tool(description="Last prices of the watchlist symbols.")
    async def prices(ctx: Context) -> dict[str, str]:
        return await run(ctx, svc.prices)

    @server.tool(description="The settings in force and which were changed live.")
    async def settings_show(ctx: Context) -> dict[str, Any]:
        return await run(ctx, svc.settings)

    @server.tool(description="Stored backtests, oldest first, with headline metrics.")
    async def list_backtests(ctx: Context) -> list[dict[str, Any]]:
        return await run(ctx, svc.backtests)

    @server.tool(
        description="One stored backtest: metrics, tables, trade list, strategy identities."
    )
    async def show_backtest(ctx: Context, backtest_id: str) -> dict[str, Any]:
        return await run(ctx, lambda who: svc.backtest(who, backtest_id))

    @server.tool(description="Two stored backtests' metrics side by side (diff = b - a).")
    async def compare_backtests(ctx: Context, a: str, b: str) -> dict[str, Any]:
        return await run(ctx, lambda who: svc.compare_backtests(who, a, b))

    @server.tool(
        description="ADMIN. Start a backtest of the bot's settings (spec: BacktestSpec fields, "
        "data_dir a folder of CSV candles on the API host); returns its id at once."
    )
    async def run_backtest(
        ctx: Context, spec: dict[str, Any], charts: bool = True
    ) -> dict[str, Any]:
        call = BacktestCall(spec=spec, charts=charts)
        return await run(ctx, lambda who: svc.run_backtest(who, call))

    # -- controls ----------------------------------------------------------------------------
    @server.tool(description="Pause trading (sets the emergency stop; no new entries).")
    async def pause(ctx: Context, reason: str = "paused via MCP") -> dict[str, Any]:
        return await run(
            ctx, lambda who: svc.set_stop(who, active=True, reason=reason, action="pause")
        )

    @server.tool(description="Resume trading (clears the emergency stop).")
    async def resume(ctx: Context, reason: str = "resumed via MCP") -> dict[str, Any]:
        return await run(
            ctx, lambda who: svc.set_stop(who, active=False, reason=reason, action="resume")
        )

    @server.tool(description="Emergency stop: no trading cycle places an order until resumed.")
    async def emergency_stop(
        ctx: Context, reason: str = "emergency stop via MCP"
    ) -> dict[str, Any]:
        return await run(
            ctx,
            lambda who: svc.set_stop(who, active=True, reason=reason, action="emergency_stop"),
        )

    # -- trading -----------------------------------------------------------------------------
    def manual(
        request: dict[str, Any], confirm: str | None, dry_run: bool
    ) -> Callable[[Principal], Any]:
        call = ManualCall(request=_clean(request), confirm=confirm, dry_run=dry_run)
        return lambda who: svc.manual(who, call)

    @server.tool(
        description="Place a market (no price) or limit order through the risk rules. REAL: "
        "returns a preview and a token; call again with confirm=<token> to place."
    )
    async def place_order(
        ctx: Context,
        symbol: str,
        side: Literal["buy", "sell"],
        amount: Decimal,
        amount_in: Literal["base", "quote"] = "base",
        price: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        request_id: str | None = None,
        confirm: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        request = _place(symbol, side, amount, amount_in, price, stop_loss, take_profit, request_id)
        return await run(ctx, manual(request, confirm, dry_run))

    @server.tool(description="Close all (default) or a fraction (0-1] of a position at market.")
    async def close_position(
        ctx: Context,
        symbol: str,
        fraction: Decimal | None = None,
        request_id: str | None = None,
        confirm: str | None = None,
    ) -> dict[str, Any]:
        request = {
            "kind": "close",
            "symbol": symbol,
            "request_id": request_id,
            "fraction": None if fraction is None else str(fraction),
        }
        return await run(ctx, manual(request, confirm, False))

    @server.tool(description="Close every open position at market.")
    async def close_all(
        ctx: Context, request_id: str | None = None, confirm: str | None = None
    ) -> dict[str, Any]:
        request = {"kind": "close_all", "request_id": request_id}
        return await run(ctx, manual(request, confirm, False))

    @server.tool(description="Move the stop-loss and/or take-profit of an open position.")
    async def move_stop(
        ctx: Context,
        symbol: str,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        request_id: str | None = None,
        confirm: str | None = None,
    ) -> dict[str, Any]:
        request = {
            "kind": "move_levels",
            "symbol": symbol,
            "request_id": request_id,
            "stop_loss": None if stop_loss is None else str(stop_loss),
            "take_profit": None if take_profit is None else str(take_profit),
        }
        return await run(ctx, manual(request, confirm, False))

    @server.tool(description="Confirm a REAL preview: runs exactly the action the token names.")
    async def confirm(ctx: Context, token: str) -> dict[str, Any]:
        return await run(ctx, lambda who: svc.confirm(who, token))

    @server.tool(description="Cancel a live order by client or exchange order id.")
    async def cancel_order(ctx: Context, order: str) -> dict[str, Any]:
        return await run(ctx, lambda who: svc.cancel(who, order))

    @server.tool(
        description="ADMIN: change a live setting (set/reset/watch-add/watch-remove). In REAL a "
        "riskier change returns a token; call again with confirm=<token>."
    )
    async def change_setting(
        ctx: Context,
        action: Literal["set", "reset", "watch-add", "watch-remove"],
        key: str | None = None,
        value: str | None = None,
        symbol: str | None = None,
        confirm: str | None = None,
    ) -> list[dict[str, Any]]:
        call = SettingsCall(
            request=SettingsRequest(action=action, key=key, value=value, symbol=symbol),
            confirm=confirm,
        )
        return await run(ctx, lambda who: svc.change_settings(who, call))

    return server


def key_caller(api: ApiContext, secret: str, client: str = "127.0.0.1") -> StdioCaller:
    """The caller of a stdio session: the API key is verified once (argon2) at start; each
    call re-reads the key (revoked or expired stops it at once) and takes its rate limit."""
    key = api.keys.verify(secret, client)

    def caller() -> Principal:
        current = api.keys.get(key.key_id)
        if current is None:
            raise AuthError(401, "bad_key", "invalid API key")
        api.keys.check(current, client)
        api.limiter.hit(current.key_id)
        return Principal(
            key_id=current.key_id,
            name=current.name,
            tiers=frozenset(current.tiers),
            mode=api.service.mode,
            client="stdio",
        )

    return caller
