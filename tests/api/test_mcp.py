"""MCP through the official SDK's client: streamable HTTP against the real uvicorn (the
same bearer token as REST), and stdio against `kestrel api mcp --stdio` in a subprocess.
The tools are the service's operations, behind the same tiers; REAL tools act only on the
second call with the token."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from emulator import BinanceEmulator

from .conftest import Served

BUY = {"symbol": "BTC/USDT", "side": "buy", "amount": "0.01"}


def with_mcp(api: Served, secret: str | None, body: Callable[[Client], Awaitable[None]]) -> None:
    headers = {}
    if secret is not None:
        headers["Authorization"] = f"Bearer {api.login(secret)['access_token']}"

    async def main() -> None:
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"{api.url}/mcp/", http_client=http)
            async with Client(transport) as client:
                await body(client)

    anyio.run(main)


def data(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return found.get("result", found) if set(found) == {"result"} else found
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error
    return str(result.content[0].text)


def test_tools_listed_and_read_over_http(demo_api: Served) -> None:
    secret = demo_api.key("assistant", "READ")

    async def body(client: Client) -> None:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {
            "status",
            "positions",
            "orders",
            "decisions",
            "place_order",
            "close_position",
            "move_stop",
            "confirm",
            "pause",
            "resume",
            "emergency_stop",
            "change_setting",
        } <= names
        status = data(await client.call_tool("status", {}))
        assert status["mode"] == "DEMO" and status["key"]["name"] == "assistant"
        refused = await client.call_tool("pause", {"reason": "no"})
        assert "forbidden" in error_text(refused)
        refused = await client.call_tool("place_order", BUY)
        assert "forbidden" in error_text(refused)

    with_mcp(demo_api, secret, body)
    assert demo_api.ctx.service.store.get_state("emergency_stop") is None
    assert demo_api.ctx.service.store.list_orders() == []


def test_no_token_and_bad_token_over_http(demo_api: Served) -> None:
    async def body(client: Client) -> None:
        result = await client.call_tool("status", {})
        assert "no_token" in error_text(result)

    with_mcp(demo_api, None, body)


def test_demo_trading_tool_acts_at_once(demo_api: Served) -> None:
    secret = demo_api.key("assistant", "READ", "DEMO_TRADE")

    async def body(client: Client) -> None:
        placed = data(await client.call_tool("place_order", BUY))
        assert placed["status"] == "PLACED"
        bad = await client.call_tool("place_order", {**BUY, "amount": "-3"})
        assert bad.is_error

    with_mcp(demo_api, secret, body)
    assert len(demo_api.ctx.service.store.list_orders()) == 1


def test_real_tool_returns_a_token_and_acts_only_on_the_second_call(
    real_api: Served, emulator: BinanceEmulator
) -> None:
    secret = real_api.key("assistant", "READ", "REAL_TRADE")

    async def body(client: Client) -> None:
        preview = data(await client.call_tool("place_order", BUY))
        assert preview["status"] == "NEEDS_CONFIRMATION" and preview["token"]
        assert emulator.request_count("/api/v3/order", "POST") == 0
        done = data(await client.call_tool("place_order", {**BUY, "confirm": preview["token"]}))
        assert done["status"] == "PLACED"
        again = await client.call_tool("confirm", {"token": preview["token"]})
        assert "confirmation_used" in error_text(again)

    with_mcp(real_api, secret, body)
    assert emulator.request_count("/api/v3/order", "POST") == 1


def test_stdio_server_as_a_key(tmp_path: Path, tmp_data_dir: Path) -> None:
    from api.auth.keys import KeyBook
    from kestrel.config.settings import load_settings
    from kestrel.mode import TradingMode
    from kestrel.store import open_store

    config = tmp_path / "kestrel.toml"
    config.write_text(
        f'mode = "DEMO"\ndata_dir = "{tmp_data_dir}"\n[paper]\nmarket_data = "simulated"\n'
        'seed = 3\n[[watchlist]]\nsymbol = "BTC/USDT"\ntimeframe = "1h"\n'
    )
    store = open_store(load_settings(mode="DEMO", data_dir=tmp_data_dir), TradingMode.DEMO)
    try:
        secret = KeyBook(store).create("local", ["READ"], by="pytest").secret
    finally:
        store.close()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli", "api", "mcp", "--stdio"],
        env={**os.environ, "KESTREL_CONFIG": str(config), "KESTREL_API_KEY": secret},
        cwd=str(Path(__file__).resolve().parents[2]),
    )

    async def main() -> None:
        async with Client(params) as client:
            status = data(await client.call_tool("status", {}))
            assert status["mode"] == "DEMO" and status["key"]["name"] == "local"
            refused = await client.call_tool("emergency_stop", {})
            assert "forbidden" in error_text(refused)

    anyio.run(main)


def test_tampered_and_demo_tokens_refused_by_mcp(real_api: Served) -> None:
    from api.auth.tokens import TokenService
    from kestrel.mode import TradingMode

    from .conftest import SECRET

    secret = real_api.key("assistant", "READ", "DEMO_TRADE", "REAL_TRADE")
    demo_token = (
        TokenService(real_api.ctx.keys, SECRET, mode=TradingMode.DEMO)
        .login(secret, "127.0.0.1")
        .access_token
    )
    good = str(real_api.login(secret)["access_token"])
    for token, code in ((demo_token, "wrong_mode"), (good[:-2] + "xx", "bad_token")):

        async def main(token: str = token, code: str = code) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
                transport = streamable_http_client(f"{real_api.url}/mcp/", http_client=http)
                async with Client(transport) as client:
                    result = await client.call_tool("place_order", BUY)
                    assert code in error_text(result)

        anyio.run(main)
    assert real_api.ctx.service.store.list_orders() == []
