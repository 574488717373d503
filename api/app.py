"""The FastAPI application: REST under /api, the WebSocket at /ws, MCP at /mcp, and the
dashboard at /. Every refusal is JSON `{"error": code, "detail": what to fix}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.tiers import AuthError
from api.context import ApiContext
from api.service import ServiceError


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over `limit` bytes (413) before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(413, "too_large", f"request body over {self.limit} bytes")(
                scope, receive, send
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _error(413, "too_large", f"request body over {self.limit} bytes")(
                scope, receive, send
            )


class _TooLarge(Exception):
    pass


def create_app(ctx: ApiContext, *, mcp: bool = True, dashboard: bool = True) -> FastAPI:
    from api.rest import router

    mcp_server = None
    mcp_app = None
    if mcp:
        from api.mcp_server import build_mcp

        mcp_server = build_mcp(ctx)
        mcp_app = mcp_server.streamable_http_app(streamable_http_path="/", host=ctx.config.host)
    app = FastAPI(
        title="Kestrel operator API",
        version="1",
        description="Status, books, decisions, controls and manual trading of one Kestrel "
        f"mode ({ctx.service.mode.value}). Auth: POST /api/auth/token with an API key.",
        lifespan=_lifespan(mcp_server),
    )
    app.state.kestrel = ctx
    app.include_router(router)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        wait = f"{max(1, round(exc.retry_after))}"
        headers = {"Retry-After": wait} if exc.status == 429 else None
        return _error(exc.status, exc.code, str(exc), headers)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "bad_request", problems)

    from api.ws import attach_ws

    attach_ws(app, ctx)
    if dashboard:
        from api.dashboard import attach_dashboard

        attach_dashboard(app)
    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    app.add_middleware(BodyLimit, limit=ctx.config.max_body_bytes)
    return app


def _lifespan(mcp_server: Any) -> Any:
    """Run the MCP session manager while the app runs; stop the WebSocket hub at the end."""
    from collections.abc import AsyncIterator
    from contextlib import AsyncExitStack, asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            try:
                yield
            finally:
                await app.state.hub.stop()

    return lifespan
