"""The REST face: thin FastAPI routes over ApiService (every rule lives there).

Endpoints are sync `def`s: FastAPI runs them in its thread pool, which suits the store and
the ccxt-shaped exchange (both blocking). Authentication: `Authorization: Bearer <access>`
from POST /api/auth/token (an API key) or /api/auth/refresh.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.auth.tiers import AuthError, Principal
from api.auth.tokens import TokenPair
from api.context import ApiContext
from api.service import BacktestCall, ManualCall, SettingsCall


class LoginBody(BaseModel):
    api_key: str = Field(min_length=1, max_length=200, repr=False)


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200, repr=False)


class ReasonBody(BaseModel):
    reason: str = Field(default="", max_length=200)


class ConfirmBody(BaseModel):
    token: str = Field(min_length=1, max_length=64)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.kestrel
    return ctx


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            401, "no_token", "send Authorization: Bearer <access token> (POST /api/auth/token)"
        )
    return context(request).authenticate(token.strip(), client_of(request))


Who = Annotated[Principal, Depends(principal)]
Ctx = Annotated[ApiContext, Depends(context)]

router = APIRouter(prefix="/api")


@router.get("/health", tags=["read"])
def health(ctx: Ctx) -> dict[str, str]:
    """Liveness, no authentication: the process answers and which mode it serves."""
    return {"status": "ok", "mode": ctx.service.mode.value}


@router.post("/auth/token", tags=["auth"])
def login(body: LoginBody, request: Request, ctx: Ctx) -> TokenPair:
    """Exchange an API key for a short-lived access token and a single-use refresh token."""
    client = client_of(request)
    ctx.limiter.hit(f"login:{client}")
    return ctx.tokens.login(body.api_key, client)


@router.post("/auth/refresh", tags=["auth"])
def refresh(body: RefreshBody, request: Request, ctx: Ctx) -> TokenPair:
    """A new pair for a refresh token, which is then used up; a reused one revokes the login."""
    client = client_of(request)
    ctx.limiter.hit(f"login:{client}")
    return ctx.tokens.refresh(body.refresh_token, client)


@router.get("/status", tags=["read"])
def status(who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.status(who)


@router.get("/balances", tags=["read"])
def balances(who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.balances(who)


@router.get("/positions", tags=["read"])
def positions(who: Who, ctx: Ctx, status: str = "OPEN") -> list[dict[str, Any]]:
    """Positions: status OPEN (default), CLOSED or ALL."""
    return ctx.service.positions(who, status)


@router.get("/orders/{which}", tags=["read"])
def orders(who: Who, ctx: Ctx, which: str, limit: int = 200) -> list[dict[str, Any]]:
    """`open` (live) or `closed` (filled, canceled, rejected, failed) orders, oldest first."""
    return ctx.service.orders(who, which, limit)


@router.get("/decisions", tags=["read"])
def decisions(
    who: Who, ctx: Ctx, symbol: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Trade decisions (decided, held, blocked) with their reasons, newest last."""
    return ctx.service.decisions(who, symbol, limit)


@router.get("/events", tags=["read"])
def events(
    who: Who,
    ctx: Ctx,
    after_seq: int = 0,
    limit: int = 100,
    types: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The event log (the same outbox Telegram is fed from), in seq order after `after_seq`."""
    return ctx.service.events(who, after_seq, limit, types)


@router.get("/prices", tags=["read"])
def prices(who: Who, ctx: Ctx) -> dict[str, str]:
    return ctx.service.prices(who)


@router.get("/candles", tags=["read"])
def candles(
    who: Who, ctx: Ctx, symbol: str, timeframe: str = "1h", limit: int = 200
) -> list[list[Any]]:
    return ctx.service.candles(who, symbol, timeframe, limit)


@router.get("/settings", tags=["read"])
def settings(who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.settings(who)


@router.get("/backtests", tags=["backtest"])
def backtests(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Stored backtests (`kestrel backtest run` or POST /api/backtests), oldest first."""
    return ctx.service.backtests(who)


@router.post("/backtests", tags=["backtest", "change"], status_code=202)
def run_backtest(body: BacktestCall, who: Who, ctx: Ctx) -> dict[str, Any]:
    """ADMIN. Start a backtest of the API's settings in a worker thread; answers its id at
    once (GET /api/backtests/{id} is 409 backtest_running until the result is stored)."""
    return ctx.service.run_backtest(who, body)


@router.get("/backtests/{result_id}", tags=["backtest"])
def backtest(result_id: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    """One backtest: metrics, tables, trade list, strategy identities, charts drawn."""
    return ctx.service.backtest(who, result_id)


@router.get("/backtests/{result_id}/compare/{other_id}", tags=["backtest"])
def compare_backtests(result_id: str, other_id: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Two backtests' metrics side by side (a = result_id, b = other_id, diff = b - a)."""
    return ctx.service.compare_backtests(who, result_id, other_id)


@router.get(
    "/backtests/{result_id}/charts/{chart}.png",
    tags=["backtest"],
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
def backtest_chart(result_id: str, chart: str, who: Who, ctx: Ctx) -> FileResponse:
    """The stored equity (or prices) chart as PNG."""
    return FileResponse(ctx.service.backtest_chart(who, result_id, chart), media_type="image/png")


@router.post("/settings", tags=["change"])
def change_settings(body: SettingsCall, who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """ADMIN. In REAL a riskier change answers with a token: repeat with `confirm` to apply."""
    return ctx.service.change_settings(who, body)


@router.post("/control/pause", tags=["change"])
def pause(body: ReasonBody, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Pause trading: the emergency stop every cycle checks (no new entries)."""
    return ctx.service.set_stop(who, active=True, reason=body.reason or "paused", action="pause")


@router.post("/control/resume", tags=["change"])
def resume(body: ReasonBody, who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.set_stop(who, active=False, reason=body.reason or "resumed", action="resume")


@router.post("/control/emergency-stop", tags=["change"])
def emergency_stop(body: ReasonBody, who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.set_stop(
        who, active=True, reason=body.reason or "emergency stop", action="emergency_stop"
    )


@router.post("/manual", tags=["change"])
def manual(body: ManualCall, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Manual order / close / close-all / move stop (`request.kind`). REAL: the first call
    returns a preview and a token; the same call with `confirm` acts."""
    return ctx.service.manual(who, body)


@router.post("/manual/confirm", tags=["change"])
def confirm(body: ConfirmBody, who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.confirm(who, body.token)


@router.delete("/orders/{order_ref}", tags=["change"])
def cancel(order_ref: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    return ctx.service.cancel(who, order_ref)
