"""The WebSocket side of the emulator: Binance's market streams and user data stream, enough
for ccxt.pro's `binance` client (watch_ohlcv, watch_trades, watch_bids_asks, watch_orders,
watch_my_trades, watch_balance).

Three endpoints, as on Binance:
  /ws/<anything>   a raw market-stream connection: `{"method": "SUBSCRIBE", "params":
                   ["btcusdt@kline_1h"], "id": 1}` then `{"e": "kline", ...}` events.
  /ws/<listenKey>  the user data stream of a listenKey created by REST
                   POST /api/v3/userDataStream (raw executionReport / outboundAccountPosition).
  /ws-api/v3       the WebSocket API: `userDataStream.subscribe.signature` (what ccxt >= 4.5
                   uses for spot), after which events arrive wrapped in
                   `{"subscriptionId": n, "event": {...}}`.

Why a separate server on its own port: the REST server is a stdlib threading server (it needs
socket-level fault control); `websockets` wants an asyncio loop, which runs here in one daemon
thread. Publishing is thread-safe: the matching engine's thread hands messages to the loop,
and one writer task per connection keeps every connection's messages in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from emulator.local_server import StartStop

log = logging.getLogger(__name__)

WS_API_PATH = "/ws-api/v3"


@dataclass(eq=False)
class _Client:
    """One live connection: its outgoing queue, what it listens to, and its role."""

    conn: ServerConnection
    kind: str  # "market" | "user" | "api"
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    streams: set[str] = field(default_factory=set)
    api_key: str | None = None
    listen_key: str | None = None
    subscription_id: int | None = None


class WsCounter:
    """Connections opened and messages received per kind: the bench's 'requests' of streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.received = 0
        self.sent = 0

    def add(self, connections: int = 0, received: int = 0, sent: int = 0) -> None:
        with self._lock:
            self.connections += connections
            self.received += received
            self.sent += sent

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"connections": self.connections, "received": self.received, "sent": self.sent}


class StreamServer(StartStop):
    """Binance WebSocket endpoints over an asyncio loop in a daemon thread."""

    def __init__(
        self,
        listen_keys: Callable[[], Mapping[str, str]],
        secrets: Callable[[], Mapping[str, str]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """listen_keys: the REST side's live listenKey -> api key map (read on connect).
        secrets: api key -> secret, to check WebSocket API signatures."""
        self.host = host
        self._bind_port = port
        self._listen_keys = listen_keys
        self._secrets = secrets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._clients: set[_Client] = set()
        self._cond = threading.Condition()
        self._next_subscription = 0
        self.silenced = False
        self.counter = WsCounter()
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> StreamServer:
        self._thread = threading.Thread(target=self._run, name="binance-emulator-ws", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("emulator WebSocket server did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(
            self._handle, self.host, self._bind_port, compression=None, ping_interval=None
        ) as server:
            self._server = server
            self._port = int(next(iter(server.sockets)).getsockname()[1])
            self._ready.set()
            await self._stopped.wait()
            for client in list(self._clients):
                await client.conn.close()

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if not self._ready.is_set():
            raise RuntimeError("StreamServer not started")
        return self._port

    @property
    def url(self) -> str:
        """e.g. ws://127.0.0.1:54322 (market streams under /ws, the WebSocket API at /ws-api/v3)."""
        return f"ws://{self.host}:{self.port}"

    # -- publishing (any thread) ---------------------------------------------------------------

    def publish_market(self, stream: str, payload: Mapping[str, Any]) -> None:
        """Send `payload` to every connection subscribed to `stream` (e.g. btcusdt@kline_1h)."""
        text = json.dumps(payload)
        self._call(lambda: self._fanout(lambda c: c.kind == "market" and stream in c.streams, text))

    def publish_user(self, api_key: str, payload: Mapping[str, Any]) -> None:
        """Send a user-data event to every user stream of `api_key` (both flavours)."""
        raw = json.dumps(payload)

        def deliver() -> None:
            for client in list(self._clients):
                if client.api_key != api_key:
                    continue
                if client.kind == "user":
                    client.queue.put_nowait(raw)
                elif client.kind == "api" and client.subscription_id is not None:
                    wrapped = {"subscriptionId": client.subscription_id, "event": payload}
                    client.queue.put_nowait(json.dumps(wrapped))
                    self.counter.add(sent=1)

        self._call(deliver)

    def drop_connections(self) -> None:
        """Close every connection (a network blip): clients must reconnect and resubscribe."""

        async def drop() -> None:
            for client in list(self._clients):
                await client.conn.close(code=1001, reason="emulator drop")

        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(drop(), self._loop).result(5)

    def close_listen_key(self, listen_key: str) -> None:
        """A deleted/expired listenKey ends its streams, as on Binance."""
        self._call(lambda: self._fanout(lambda c: c.listen_key == listen_key, None))

    def _call(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn)

    def _fanout(self, match: Callable[[_Client], bool], text: str | None) -> None:
        if self.silenced and text is not None:
            return
        for client in list(self._clients):
            if match(client):
                client.queue.put_nowait(text)
                self.counter.add(sent=1)

    # -- waiting (tests, bench) ----------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """Live connections: kind, streams, whether a user stream (for operators and debugging)."""
        with self._cond:
            return [
                {
                    "kind": c.kind,
                    "streams": sorted(c.streams),
                    "user": c.api_key is not None,
                }
                for c in self._clients
            ]

    def subscribers(self, stream: str) -> int:
        with self._cond:
            return sum(1 for c in self._clients if c.kind == "market" and stream in c.streams)

    def user_subscribers(self, api_key: str) -> int:
        with self._cond:
            return sum(
                1
                for c in self._clients
                if c.api_key == api_key and (c.kind == "user" or c.subscription_id is not None)
            )

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate()` holds after a (un)subscribe/connect event; a safety
        timeout only, never a timing assumption."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- connections ---------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request is not None else "/"
        path = path.split("?", 1)[0].rstrip("/")
        self.counter.add(connections=1)
        if path == WS_API_PATH:
            client = _Client(conn, "api")
        elif path.startswith("/ws"):
            tail = path.removeprefix("/ws").lstrip("/")
            owner = self._listen_keys().get(tail)
            if owner:
                client = _Client(conn, "user", api_key=owner, listen_key=tail)
            else:
                client = _Client(conn, "market")
        else:
            await conn.close(code=1008, reason=f"unknown path {path}")
            return
        with self._cond:
            self._clients.add(client)
        self._changed()
        writer = asyncio.create_task(self._write(client))
        try:
            async for raw in conn:
                self.counter.add(received=1)
                reply = self._on_message(client, raw)
                if reply is not None:
                    client.queue.put_nowait(json.dumps(reply))
                    self._changed()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._clients.discard(client)
            self._changed()
            client.queue.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, client: _Client) -> None:
        while True:
            text = await client.queue.get()
            if text is None:
                await client.conn.close()
                return
            try:
                await client.conn.send(text)
            except ConnectionClosed:
                return

    def _on_message(self, client: _Client, raw: str | bytes) -> dict[str, Any] | None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}}
        if not isinstance(msg, dict):
            return {"error": {"code": 3, "msg": "Invalid request"}}
        if client.kind == "api":
            return self._ws_api(client, msg)
        return self._market_request(client, msg)

    def _market_request(self, client: _Client, msg: dict[str, Any]) -> dict[str, Any]:
        method, params, rid = msg.get("method"), msg.get("params") or [], msg.get("id")
        if method == "SUBSCRIBE":
            with self._cond:
                client.streams.update(str(p) for p in params)
            return {"result": None, "id": rid}
        if method == "UNSUBSCRIBE":
            with self._cond:
                client.streams.difference_update(str(p) for p in params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": rid}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": rid}

    def _ws_api(self, client: _Client, msg: dict[str, Any]) -> dict[str, Any]:
        rid, method = msg.get("id"), msg.get("method")
        params = msg.get("params") or {}
        if method == "ping":
            return {"id": rid, "status": 200, "result": {}}
        if method == "userDataStream.subscribe.signature":
            error = self._check_signature(params)
            if error is not None:
                return {"id": rid, "status": 400, "error": error}
            with self._cond:
                client.api_key = str(params["apiKey"])
                client.subscription_id = self._next_subscription
                self._next_subscription += 1
            return {"id": rid, "status": 200, "result": {"subscriptionId": client.subscription_id}}
        if method == "userDataStream.unsubscribe":
            with self._cond:
                client.subscription_id = None
            return {"id": rid, "status": 200, "result": {}}
        return {
            "id": rid,
            "status": 400,
            "error": {"code": -1, "msg": f"emulator: WebSocket API method {method} not emulated"},
        }

    def _check_signature(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        api_key = params.get("apiKey")
        secret = self._secrets().get(str(api_key)) if api_key else None
        if secret is None:
            return {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        signature = str(params.get("signature") or "")
        # Binance signs the sorted `key=value` pairs joined by `&`, not URL-encoded.
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return {"code": -1022, "msg": "Signature for this request is not valid."}
        return None
