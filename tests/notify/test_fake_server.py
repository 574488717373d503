"""The fake Bot API itself: Telegram's envelopes and status codes, long polling with
offsets, and the faults it injects, as PTB and a raw HTTP client see them."""

from __future__ import annotations

import asyncio
import threading

import httpx
from telegram import Bot

from fakes.telegram_server import FakeTelegramServer


def url(server: FakeTelegramServer, method: str, token: str | None = None) -> str:
    return f"{server.base_url}{token or server.token}/{method}"


def test_envelopes_and_status_codes(server: FakeTelegramServer) -> None:
    ok = httpx.post(url(server, "sendMessage"), json={"chat_id": 5, "text": "hi"})
    unauthorized = httpx.get(url(server, "getMe", token="1:wrong"))
    missing = httpx.get(url(server, "noSuchMethod"))
    bad = httpx.post(
        url(server, "sendMessage"), data={"chat_id": "5", "text": "<i>x", "parse_mode": "HTML"}
    )
    server.fail_next(1, "429", retry_after=7)
    limited = httpx.post(url(server, "sendMessage"), data={"chat_id": "5", "text": "x"})

    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert ok.json()["result"]["message_id"] == 1 and ok.json()["result"]["text"] == "hi"
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert missing.status_code == 404 and missing.json()["description"] == "Not Found"
    assert bad.status_code == 400
    assert bad.json()["description"].startswith("Bad Request: can't parse entities:")
    assert limited.status_code == 429 and limited.json()["parameters"] == {"retry_after": 7}
    assert [m.text for m in server.sent_messages()] == ["hi"]


def test_long_polling_with_offsets(server: FakeTelegramServer) -> None:
    async def scenario() -> tuple[int, list[str], list[str], int]:
        async with Bot(server.token, base_url=server.base_url) as bot:
            empty = await bot.get_updates(timeout=1)  # bounded wait, nothing there
            server.inject_message(10, "/status")
            server.inject_message(10, "/pnl week")
            first = await bot.get_updates(timeout=1)
            # Confirming with offset = last id + 1 makes Telegram forget them.
            after = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
            # A waiting poll is woken by a new message.
            threading.Timer(0.2, server.inject_message, args=(11, "/stop")).start()
            woken = await bot.get_updates(offset=first[-1].update_id + 1, timeout=5)
            return (
                len(empty),
                [u.message.text or "" for u in first if u.message],
                [u.message.text or "" for u in after if u.message],
                woken[0].message.chat_id if woken and woken[0].message else 0,
            )

    empty, first, after, woken_chat = asyncio.run(scenario())
    assert empty == 0
    assert first == ["/status", "/pnl week"]
    assert after == []
    assert woken_chat == 11


def test_commands_and_webhook(server: FakeTelegramServer) -> None:
    async def scenario() -> list[str]:
        async with Bot(server.token, base_url=server.base_url) as bot:
            assert await bot.delete_webhook()
            assert await bot.set_my_commands([("status", "Status"), ("stop", "Stop")])
            return [c.command for c in await bot.get_my_commands()]

    assert asyncio.run(scenario()) == ["status", "stop"]
    bad = httpx.post(
        url(server, "setMyCommands"),
        json={"commands": [{"command": "Bad Cmd", "description": "x"}]},
    )
    assert bad.status_code == 400 and "BOT_COMMAND_INVALID" in bad.json()["description"]
