"""The WebSocket face, /ws: authenticate, subscribe, a snapshot, then numbered updates.

Protocol (JSON text frames, each at most `max_ws_message_bytes`):
  -> {"type": "auth", "token": "<access token>"}         <- {"type": "authed", "mode", "tiers"}
  -> {"type": "subscribe", "channels": ["orders", "prices:BTC/USDT", ...]}
  <- {"type": "snapshot", "channel", "seq", "data"}
  <- then {"type": "update", "channel", "seq", "data"} for each change
  -> {"type": "ping"}                                      <- {"type": "pong"}
  -> {"type": "call", "id", "op", "args"}                  <- {"type": "result", "id", "data"}
  <- {"type": "error", "code", "detail"} on a bad message (nothing done)
Channels: orders, positions, decisions, account, events, prices:<SYMBOL>.

Where updates come from: the store's event log, which is the outbox Telegram is fed from
(kestrel/notify/outbox.py), tailed by one Hub for all clients. So an API client sees exactly
the events Telegram sees, in the same order. Each channel has one sequence number across all
clients: a snapshot carries the current one, each update the next, so a gap means a lost
update and the client resubscribes. A client whose queue is full (it reads slower than
updates come) is closed with code 4408 and the reason, instead of slowing anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from api.auth.tiers import AuthError, Principal
from api.context import ApiContext
from api.service import ManualCall, ServiceError
from kestrel.models import Event, EventType

log = logging.getLogger(__name__)

BASE_CHANNELS = ("orders", "positions", "decisions", "account", "events")
ORDER_TYPES = {
    EventType.ORDER_CREATED,
    EventType.ORDER_EXECUTED,
    EventType.ORDER_PARTIALLY_FILLED,
    EventType.ORDER_CANCELED,
    EventType.ORDER_FAILED,
    EventType.ORDER_REJECTED,
    EventType.SLTP_CREATED,
    EventType.SLTP_FAILED,
}
POSITION_TYPES = {EventType.POSITION_OPENED, EventType.POSITION_CLOSED}
DECISION_TYPES = {EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED}
ACCOUNT_TYPES = {
    EventType.ORDER_EXECUTED,
    EventType.ORDER_PARTIALLY_FILLED,
    *POSITION_TYPES,
    EventType.EMERGENCY_STOP_SET,
    EventType.EMERGENCY_STOP_CLEARED,
    EventType.CIRCUIT_BREAKER_TRIPPED,
    EventType.CIRCUIT_BREAKER_RESET,
}
CLOSE_SLOW = 4408
DROP = "_drop"
CLOSE_AUTH = 4401
CLOSE_TOO_BIG = 1009


@dataclass(eq=False)
class Client:
    who: Principal
    queue: asyncio.Queue[str]
    channels: set[str] = field(default_factory=set)
    dropped: str | None = None

    def push(self, message: str) -> None:
        """Queue an encoded message (encoded once by the hub for every client)."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = f"slow client: {self.queue.maxsize} updates behind; resubscribe"
            # make room for the one message that tells the sender loop to close
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(DROP)


class Hub:
    """Tails the store's events and fans them out to subscribed clients by channel."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.clients: set[Client] = set()
        self.seq: dict[str, int] = {}
        self.cursor: int | None = None
        self.lock = asyncio.Lock()
        self.prices: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        config = self.api.config
        ticks_per_price = max(1, round(config.ws_price_s / config.ws_poll_s))
        tick = 0
        while True:
            try:
                await self.poll()
                if tick % ticks_per_price == 0:
                    await self.poll_prices()
            except Exception:  # keep serving; the next poll retries
                log.exception("websocket hub poll failed")
            tick += 1
            await asyncio.sleep(config.ws_poll_s)

    # -- subscribing -------------------------------------------------------------------------
    async def subscribe(self, client: Client, channel: str) -> None:
        """Register and queue the snapshot under the hub lock: no update can slip between."""
        async with self.lock:
            if self.cursor is None:
                self.cursor = await anyio.to_thread.run_sync(self._last_seq)
            data = await anyio.to_thread.run_sync(lambda: self._snapshot(client.who, channel))
            client.channels.add(channel)
            self.clients.add(client)
            snapshot = {
                "type": "snapshot",
                "channel": channel,
                "seq": self.seq.get(channel, 0),
                "data": data,
            }
            client.push(encode(snapshot))

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def _last_seq(self) -> int:
        from kestrel.reporting.dashboards import last_event_seq

        return last_event_seq(self.api.service.store)

    def _snapshot(self, who: Principal, channel: str) -> Any:
        svc = self.api.service
        if channel == "orders":
            return svc.orders(who, "open")
        if channel == "positions":
            return svc.positions(who, "OPEN")
        if channel == "decisions":
            return svc.decisions(who, None, 50)
        if channel == "events":
            return svc.events(who, max(0, (self.cursor or 0) - 50), 50)
        if channel == "account":
            return self._account(who)
        symbol = channel.split(":", 1)[1]
        price = svc.prices(who, [symbol]).get(symbol)
        if price is not None:
            self.prices[symbol] = price
        return {"symbol": symbol, "last": price}

    def _account(self, who: Principal) -> dict[str, Any]:
        svc = self.api.service
        out: dict[str, Any] = {"status": svc.status(who)}
        try:
            out["balances"] = svc.balances(who)["balances"]
        except ServiceError as exc:
            out["balances_error"] = str(exc)
        return out

    # -- publishing --------------------------------------------------------------------------
    def publish(self, channel: str, data: Any) -> None:
        self.seq[channel] = self.seq.get(channel, 0) + 1
        message = encode(
            {"type": "update", "channel": channel, "seq": self.seq[channel], "data": data}
        )
        for client in list(self.clients):
            if channel in client.channels:
                client.push(message)

    async def poll(self) -> int:
        """Publish every event stored since the last poll; returns how many."""
        async with self.lock:
            if self.cursor is None:
                self.cursor = await anyio.to_thread.run_sync(self._last_seq)
            after = self.cursor
            store = self.api.service.store
            events = await anyio.to_thread.run_sync(
                lambda: store.list_events(after_seq=after, limit=1000)
            )
            if not events:
                return 0
            # read the subscriptions here, in the loop: clients come and go meanwhile
            wanted = {c for client in self.clients for c in client.channels}
            reader = next((c.who for c in self.clients if "account" in c.channels), None)
            extra = await anyio.to_thread.run_sync(lambda: self._details(events, wanted, reader))
            for event in events:
                self._fan_out(event, extra)
            self.cursor = events[-1].seq or after
            return len(events)

    def _details(
        self, events: list[Event], wanted: set[str], reader: Principal | None
    ) -> dict[str, Any]:
        """What updates carry besides the event: the order as stored now, the open
        positions, the account (read once per batch, only if a channel needs it)."""
        store = self.api.service.store
        out: dict[str, Any] = {"orders": {}}
        if "orders" in wanted:
            for event in events:
                if event.type in ORDER_TYPES and event.client_order_id:
                    order = store.get_order(event.client_order_id)
                    if order is not None:
                        out["orders"][event.client_order_id] = order.model_dump(mode="json")
        if "positions" in wanted and any(e.type in POSITION_TYPES | ORDER_TYPES for e in events):
            out["positions"] = [
                p.model_dump(mode="json")
                for p in store.list_positions(status=None)
                if p.status.value == "OPEN"
            ]
        if reader is not None and any(e.type in ACCOUNT_TYPES for e in events):
            out["account"] = self._account(reader)
        return out

    def _fan_out(self, event: Event, extra: dict[str, Any]) -> None:
        body = event.model_dump(mode="json")
        self.publish("events", body)
        if event.type in ORDER_TYPES:
            order = extra["orders"].get(event.client_order_id or "")
            self.publish("orders", {"event": body, "order": order})
        if event.type in POSITION_TYPES:
            self.publish("positions", {"event": body, "positions": extra.get("positions")})
        if event.type in DECISION_TYPES:
            self.publish("decisions", body)
        if event.type in ACCOUNT_TYPES and "account" in extra:
            self.publish("account", {"event": body, **extra["account"]})

    async def poll_prices(self) -> None:
        symbols = sorted(
            {
                c.split(":", 1)[1]
                for cl in self.clients
                for c in cl.channels
                if c.startswith("prices:")
            }
        )
        reader = next((cl.who for cl in self.clients if cl.channels), None)
        if not symbols or reader is None:
            return
        svc = self.api.service
        found = await anyio.to_thread.run_sync(lambda: svc.prices(reader, symbols))
        async with self.lock:
            for symbol, price in found.items():
                if self.prices.get(symbol) != price:
                    self.prices[symbol] = price
                    self.publish(f"prices:{symbol}", {"symbol": symbol, "last": price})


# -- the endpoint ----------------------------------------------------------------------------

CallOp = Callable[[Principal, dict[str, Any]], Any]


def _ops(api: ApiContext) -> dict[str, CallOp]:
    """The operations a `call` message may name: the service's, nothing else."""
    svc = api.service
    return {
        "status": lambda who, a: svc.status(who),
        "balances": lambda who, a: svc.balances(who),
        "positions": lambda who, a: svc.positions(who, str(a.get("status", "OPEN"))),
        "orders": lambda who, a: svc.orders(who, str(a.get("which", "open"))),
        "decisions": lambda who, a: svc.decisions(who, a.get("symbol"), int(a.get("limit", 50))),
        "pause": lambda who, a: svc.set_stop(
            who, active=True, reason=str(a.get("reason", "")), action="pause"
        ),
        "resume": lambda who, a: svc.set_stop(
            who, active=False, reason=str(a.get("reason", "")), action="resume"
        ),
        "emergency_stop": lambda who, a: svc.set_stop(
            who, active=True, reason=str(a.get("reason", "")), action="emergency_stop"
        ),
        "manual": lambda who, a: svc.manual(who, ManualCall.model_validate(a)),
        "confirm": lambda who, a: svc.confirm(who, str(a.get("token", ""))),
        "cancel": lambda who, a: svc.cancel(who, str(a.get("order", ""))),
    }


def attach_ws(app: FastAPI, api: ApiContext) -> Hub:
    hub = Hub(api)
    app.state.hub = hub
    ops = _ops(api)
    limit = api.config.max_ws_message_bytes

    @app.websocket("/ws")
    async def ws_endpoint(socket: WebSocket) -> None:
        await socket.accept()
        client_ip = socket.client.host if socket.client else ""
        session = _Session(socket, api, hub, ops, client_ip, limit)
        try:
            await session.run()
        except WebSocketDisconnect:
            pass
        finally:
            if session.client is not None:
                hub.unsubscribe(session.client)

    return hub


class _Session:
    def __init__(
        self,
        socket: WebSocket,
        api: ApiContext,
        hub: Hub,
        ops: dict[str, CallOp],
        client_ip: str,
        limit: int,
    ) -> None:
        self.socket, self.api, self.hub, self.ops = socket, api, hub, ops
        self.client_ip, self.limit = client_ip, limit
        self.token: str | None = None
        self.client: Client | None = None
        self.sender: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_text(encode(message))

    async def error(self, code: str, detail: str) -> None:
        await self.send({"type": "error", "code": code, "detail": detail})

    async def run(self) -> None:
        try:
            while True:
                frame = await self.socket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                text = frame.get("text")
                if text is None and frame.get("bytes") is not None:
                    text = None
                    size = len(frame["bytes"])
                else:
                    size = len((text or "").encode())
                if size > self.limit:
                    await self.socket.close(CLOSE_TOO_BIG, f"message over {self.limit} bytes")
                    return
                if text is None:
                    await self.error("malformed", "send JSON text frames")
                    continue
                try:
                    message = json.loads(text)
                except ValueError:
                    await self.error("malformed", "not JSON")
                    continue
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    await self.error("malformed", 'send an object with a "type"')
                    continue
                if not await self.handle(message):
                    return
        finally:
            if self.sender is not None:
                self.sender.cancel()

    async def who(self) -> Principal | None:
        if self.token is None:
            await self.error("no_token", 'authenticate first: {"type": "auth", "token": ...}')
            return None
        token = self.token
        try:
            return await anyio.to_thread.run_sync(
                lambda: self.api.authenticate(token, self.client_ip)
            )
        except AuthError as exc:
            await self.error(exc.code, str(exc))
            if exc.status == 401:
                self.token = None
            return None

    async def handle(self, message: dict[str, Any]) -> bool:
        kind = message["type"]
        if kind == "ping":
            await self.send({"type": "pong", "t": message.get("t")})
            return True
        if kind == "auth":
            self.token = str(message.get("token") or "")
            who = await self.who()
            if who is None:
                await self.socket.close(CLOSE_AUTH, "authentication failed")
                return False
            await self.send(
                {
                    "type": "authed",
                    "mode": who.mode.value,
                    "key": who.name,
                    "tiers": sorted(t.value for t in who.tiers),
                }
            )
            return True
        if kind == "subscribe":
            return await self.subscribe(message)
        if kind == "call":
            await self.call(message)
            return True
        await self.error("unknown_type", f"unknown message type {kind!r}")
        return True

    async def subscribe(self, message: dict[str, Any]) -> bool:
        channels = message.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            await self.error("malformed", 'subscribe takes "channels": [names]')
            return True
        bad = [c for c in channels if c not in BASE_CHANNELS and not _price_channel(c)]
        if bad:
            await self.error(
                "unknown_channel", f"unknown channels {bad}; use {BASE_CHANNELS} or prices:<SYMBOL>"
            )
            return True
        who = await self.who()
        if who is None:
            return True
        if self.client is None:
            self.client = Client(who, asyncio.Queue(maxsize=self.api.config.ws_queue))
            self.sender = asyncio.get_running_loop().create_task(self._pump(self.client))
            self.hub.start()
        self.client.who = who
        for channel in channels:
            try:
                await self.hub.subscribe(self.client, channel)
            except (ServiceError, AuthError) as exc:
                await self.error(exc.code, f"{channel}: {exc}")
        return True

    async def _pump(self, client: Client) -> None:
        """Send queued messages; on a drop, close with the reason. Every `ws_recheck_s` the
        session's token is checked again: an expired token or a revoked key stops the push
        (close 4401); a client keeps it going by sending a fresh `auth` before expiry."""
        recheck = self.api.config.ws_recheck_s
        checked = time.monotonic()
        try:
            while True:
                try:
                    message = await asyncio.wait_for(client.queue.get(), timeout=recheck)
                except TimeoutError:
                    message = ""
                if time.monotonic() - checked >= recheck:
                    checked = time.monotonic()
                    if not await self._still_valid():
                        self.hub.unsubscribe(client)
                        await self.socket.close(CLOSE_AUTH, "token expired or key revoked")
                        return
                if not message:
                    continue
                if message == DROP:
                    self.hub.unsubscribe(client)
                    await self.socket.close(CLOSE_SLOW, client.dropped or "slow client")
                    return
                await self.socket.send_text(message)
        except (WebSocketDisconnect, RuntimeError):
            self.hub.unsubscribe(client)

    async def _still_valid(self) -> bool:
        token = self.token
        if token is None:
            return False
        try:
            await anyio.to_thread.run_sync(
                lambda: self.api.tokens.authenticate(token, self.client_ip)
            )
        except AuthError:
            return False
        return True

    async def call(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        op = self.ops.get(str(message.get("op")))
        args = message.get("args") or {}
        if op is None or not isinstance(args, dict):
            await self.send(
                {
                    "type": "error",
                    "id": ident,
                    "code": "unknown_op",
                    "detail": f"op must be one of {sorted(self.ops)}; args an object",
                }
            )
            return
        who = await self.who()
        if who is None:
            return
        try:
            data = await anyio.to_thread.run_sync(lambda: op(who, args))
        except (ServiceError, AuthError) as exc:
            await self.send({"type": "error", "id": ident, "code": exc.code, "detail": str(exc)})
            return
        except ValueError as exc:  # a request that does not validate
            await self.send(
                {
                    "type": "error",
                    "id": ident,
                    "code": "bad_request",
                    "detail": str(exc).splitlines()[0],
                }
            )
            return
        await self.send({"type": "result", "id": ident, "data": data})


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, default=str, separators=(",", ":"))


def _price_channel(channel: str) -> bool:
    from kestrel.models.market import SYMBOL_PATTERN

    prefix, _, symbol = channel.partition(":")
    return prefix == "prices" and bool(SYMBOL_PATTERN.match(symbol))
