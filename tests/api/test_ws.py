"""/ws with the real `websockets` client against a real uvicorn: auth, snapshots, numbered
updates sourced from the store's event log, ping/pong, calls, bad messages, slow clients.

`recv(timeout=...)` only bounds a hang; no assertion depends on how long anything took."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api import ApiConfig
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType
from kestrel.runtime import Runtime

from .conftest import Clock, Served, serve

WAIT = 30


def ws_url(api: Served) -> str:
    return api.url.replace("http://", "ws://") + "/ws"


def send(ws: ClientConnection, **message: Any) -> None:
    ws.send(json.dumps(message))


def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=WAIT))
    return message


def until(ws: ClientConnection, kind: str, channel: str | None = None) -> dict[str, Any]:
    while True:
        message = recv(ws)
        if message["type"] == kind and (channel is None or message.get("channel") == channel):
            return message


def authed(api: Served, secret: str) -> ClientConnection:
    ws = connect(ws_url(api), max_size=2**22)
    send(ws, type="auth", token=api.login(secret)["access_token"])
    answer = recv(ws)
    assert answer["type"] == "authed", answer
    return ws


def test_auth_required_and_bad_token_closes(demo_api: Served) -> None:
    with connect(ws_url(demo_api)) as ws:
        send(ws, type="subscribe", channels=["orders"])
        assert recv(ws)["code"] == "no_token"
        send(ws, type="auth", token="garbage")
        assert recv(ws)["code"] == "bad_token"
        with pytest.raises(ConnectionClosed) as closed:
            recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_snapshot_then_numbered_updates_from_the_event_log(demo_api: Served) -> None:
    secret = demo_api.key("trader", "READ", "DEMO_TRADE")
    with authed(demo_api, secret) as ws, demo_api.client(secret) as http:
        send(ws, type="subscribe", channels=["orders", "decisions", "events", "account"])
        snaps = {m["channel"]: m for m in (until(ws, "snapshot") for _ in range(4))}
        assert snaps["orders"]["data"] == [] and snaps["orders"]["seq"] == 0
        assert snaps["account"]["data"]["status"]["mode"] == "DEMO"
        placed = http.post(
            "/api/manual",
            json={
                "request": {
                    "kind": "place",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "amount": "0.01",
                    "type": "limit",
                    "price": "19000",
                }
            },
        ).json()
        assert placed["status"] == "PLACED"
        updates: dict[str, dict[str, Any]] = {}
        while not {"orders", "decisions"} <= set(updates):
            message = until(ws, "update")
            updates.setdefault(message["channel"], message)
        order_update, decision = updates["orders"], updates["decisions"]
        assert order_update["seq"] == 1 and decision["seq"] == 1
        cid = placed["orders"][0]["client_order_id"]
        assert order_update["data"]["order"]["client_order_id"] == cid
        assert decision["data"]["type"] == "TRADE_DECIDED" and decision["data"]["reasons"]
    stored = demo_api.ctx.service.store.list_events()
    assert any(e.type is EventType.TRADE_DECIDED for e in stored)


def test_event_channel_sequence_has_no_gaps_and_matches_the_store(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    store = demo_api.ctx.service.store
    with authed(demo_api, secret) as ws:
        send(ws, type="subscribe", channels=["events"])
        first = until(ws, "snapshot", "events")["seq"]
        batch = [
            Event(
                event_id=f"test:{i}",
                type=EventType.CRITICAL,
                mode=TradingMode.DEMO,
                message=f"n{i}",
            )
            for i in range(25)
        ]
        store.append_events(batch)
        seen = [until(ws, "update", "events") for _ in batch]
    assert [m["seq"] for m in seen] == list(range(first + 1, first + 26))
    assert [m["data"]["event_id"] for m in seen] == [e.event_id for e in batch]


def test_ping_pong_malformed_and_unknown(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with authed(demo_api, secret) as ws:
        send(ws, type="ping", t=7)
        assert recv(ws) == {"type": "pong", "t": 7}
        ws.send("{not json")
        assert recv(ws)["code"] == "malformed"
        ws.send("[1, 2]")
        assert recv(ws)["code"] == "malformed"
        send(ws, type="fly")
        assert recv(ws)["code"] == "unknown_type"
        send(ws, type="subscribe", channels=["secrets"])
        assert recv(ws)["code"] == "unknown_channel"
        send(ws, type="call", op="rm -rf", args={})
        assert recv(ws)["code"] == "unknown_op"
        send(ws, type="ping")
        assert recv(ws)["type"] == "pong"  # still connected after every bad message


def test_oversized_message_closes_the_connection(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with authed(demo_api, secret) as ws:
        ws.send(json.dumps({"type": "ping", "pad": "x" * 20_000}))
        with pytest.raises(ConnectionClosed) as closed:
            recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_calls_go_through_the_same_tiers(demo_api: Served) -> None:
    reader = demo_api.key("reader", "READ")
    trader = demo_api.key("trader", "READ", "DEMO_TRADE")
    with authed(demo_api, reader) as ws:
        send(ws, type="call", id=1, op="pause", args={"reason": "x"})
        answer = recv(ws)
        assert (answer["id"], answer["code"]) == (1, "forbidden")
    assert demo_api.ctx.service.store.get_state("emergency_stop") is None
    with authed(demo_api, trader) as ws:
        send(ws, type="call", id=2, op="pause", args={"reason": "from ws"})
        answer = recv(ws)
        assert answer["type"] == "result" and answer["data"]["emergency_stop"]["active"]
        send(ws, type="call", id=3, op="manual", args={"request": {"kind": "place"}})
        assert recv(ws)["code"] == "bad_request"


@pytest.fixture
def tiny_queue_api(demo_rt: Runtime, clock: Clock) -> Iterator[Served]:
    yield from serve(demo_rt, clock, ApiConfig(ws_poll_s=0.05, ws_queue=3))


def test_slow_client_is_dropped_with_a_reason(tiny_queue_api: Served) -> None:
    api = tiny_queue_api
    secret = api.key("reader", "READ")
    with authed(api, secret) as ws:
        send(ws, type="subscribe", channels=["events"])
        until(ws, "snapshot", "events")
        api.ctx.service.store.append_events(
            [
                Event(event_id=f"burst:{i}", type=EventType.CRITICAL, mode=TradingMode.DEMO)
                for i in range(20)
            ]
        )
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    assert "slow client" in closed.value.rcvd.reason


@pytest.fixture
def recheck_api(demo_rt: Runtime, clock: Clock) -> Iterator[Served]:
    yield from serve(demo_rt, clock, ApiConfig(ws_poll_s=0.05, ws_recheck_s=0.05))


def test_push_stops_when_the_token_expires_or_the_key_is_revoked(recheck_api: Served) -> None:
    api = recheck_api
    secret = api.key("reader", "READ")
    with authed(api, secret) as ws:
        send(ws, type="subscribe", channels=["events"])
        until(ws, "snapshot", "events")
        api.clock.tick(api.ctx.config.access_ttl_s + 1)  # the token is now expired
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    other = api.key("other", "READ")
    with authed(api, other) as ws:
        send(ws, type="subscribe", channels=["events"])
        until(ws, "snapshot", "events")
        api.ctx.keys.revoke("other", by="pytest")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
