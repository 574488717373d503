"""A local server of ours that speaks the Telegram Bot API, for tests and offline demos.

Why a real HTTP server rather than a mocked `Bot`: the exactly-once claims of the notifier are
about what happens on the wire (timeouts, dropped connections, 429 with retry_after, 5xx), so
the real python-telegram-bot client must talk to something that fails the way Telegram does.
Point PTB at it with `Bot(token, base_url=server.base_url)`.

It implements getMe, sendMessage (entity parsing as strict as Telegram's), getUpdates (long
polling with offset/timeout, bounded), setMyCommands/getMyCommands/deleteMyCommands,
deleteWebhook/getWebhookInfo, answerCallbackQuery; every request and every accepted message is
recorded; tests inject user messages and faults (`fail_next`).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from emulator.local_server import LocalHTTPServer
from fakes.telegram_entities import EntityParseError, parse_entities

DEFAULT_TOKEN = "123456789:AAFakeTokenForKestrelTests-0123456789ab"
MAX_MESSAGE_LENGTH = 4096
FaultKind = Literal["5xx", "429", "hang", "drop", "accept_hang"]
_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_JSON_FIELDS = frozenset(
    {"commands", "reply_markup", "allowed_updates", "entities", "link_preview_options", "scope"}
)


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as Telegram would store it."""

    message_id: int
    chat_id: int
    raw_text: str
    parse_mode: str | None
    text: str  # what the user sees: markup removed, escapes resolved
    params: dict[str, Any]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    params: dict[str, Any]
    token_ok: bool


@dataclass
class _Fault:
    kind: FaultKind
    method: str
    remaining: int
    status: int = 500
    retry_after: int = 1


@dataclass
class _State:
    messages: list[SentMessage] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1
    chat_message_ids: dict[int, int] = field(default_factory=dict)
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    forbidden_chats: set[int] = field(default_factory=set)
    webhook_deleted: int = 0


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


class FakeTelegramServer(LocalHTTPServer):
    """HTTP on 127.0.0.1 on a free port; use as a context manager.

    Hangs are bounded by `max_hang_s` and released at shutdown, so a test can never block.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = 7000001,
        bot_username: str = "kestrel_test_bot",
        max_hang_s: float = 10.0,
        max_long_poll_s: float = 5.0,
    ) -> None:
        super().__init__("fake-telegram")
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Kestrel",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.max_hang_s = max_hang_s
        self.max_long_poll_s = max_long_poll_s
        self._state = _State()
        self._cond = threading.Condition()
        self._closing = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _QuietServer(address, _make_handler(self))

    def release(self) -> None:
        """End the hangs and long polls in flight."""
        self._closing.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def base_url(self) -> str:
        """For `telegram.Bot(token, base_url=...)`: PTB appends the token to it."""
        return f"{self.url}/bot"

    # -- what tests look at ---------------------------------------------------------------------
    def sent_messages(self, chat_id: int | None = None) -> list[SentMessage]:
        with self._cond:
            return [m for m in self._state.messages if chat_id is None or m.chat_id == chat_id]

    def requests(self, method: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self._state.requests if method is None or r.method == method]

    def commands(self, scope_key: str = "default") -> list[dict[str, str]]:
        with self._cond:
            return list(self._state.commands.get(scope_key, []))

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[SentMessage]:
        """Block until at least `count` messages were accepted (or raise TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._state.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._state.messages)} messages after {timeout}s, wanted {count}"
                    )
                self._cond.wait(left)
            return list(self._state.messages)

    def wait_for_request(self, method: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([r for r in self._state.requests if r.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {count} {method} requests after {timeout}s")
                self._cond.wait(left)

    # -- what tests inject ----------------------------------------------------------------------
    def inject_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        username: str = "someone",
        chat_type: str = "private",
        age_s: float = 0.0,
    ) -> int:
        """Queue an incoming user message (an Update) for getUpdates; returns its update_id.
        Bot commands get the bot_command entity Telegram adds, so PTB's CommandHandler fires.
        `age_s` back-dates it, like a message that waited while the bot was down."""
        entities = []
        if text.startswith("/"):
            length = len(text.split()[0])
            entities.append({"type": "bot_command", "offset": 0, "length": length})
        with self._cond:
            message_id = self._next_message_id(chat_id)
            update_id = self._state.next_update_id
            self._state.next_update_id += 1
            sender = user_id if user_id is not None else chat_id
            self._state.updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time() - age_s),
                        "chat": {"id": chat_id, "type": chat_type, "username": username},
                        "from": {
                            "id": sender,
                            "is_bot": False,
                            "first_name": username,
                            "username": username,
                        },
                        "text": text,
                        "entities": entities,
                    },
                }
            )
            self._cond.notify_all()
            return update_id

    def fail_next(
        self,
        count: int,
        kind: FaultKind,
        *,
        method: str = "sendMessage",
        status: int = 500,
        retry_after: int = 1,
    ) -> None:
        """The next `count` calls of `method` fail like this:
        5xx: answer `status` with Telegram's error envelope (message not accepted);
        429: 'Too Many Requests: retry after N' with parameters.retry_after (not accepted);
        hang: never answer until the client gives up (not accepted; bounded by max_hang_s);
        drop: accept and record the message, then close the connection without answering;
        accept_hang: accept and record, then hold the answer (a client crash lands here)."""
        with self._cond:
            self._state.faults.append(_Fault(kind, method, count, status, retry_after))

    def forbid_chat(self, chat_id: int) -> None:
        """sendMessage to this chat answers 403 'bot was blocked by the user'."""
        with self._cond:
            self._state.forbidden_chats.add(chat_id)

    # -- request handling (server threads) ------------------------------------------------------
    def _next_message_id(self, chat_id: int) -> int:
        current = self._state.chat_message_ids.get(chat_id, 0) + 1
        self._state.chat_message_ids[chat_id] = current
        return current

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            for fault in self._state.faults:
                if fault.method == method and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
            return None

    def hold(self, seconds: float | None = None) -> None:
        """Wait in a handler thread, bounded, released early by shutdown."""
        self._closing.wait(self.max_hang_s if seconds is None else seconds)

    def record(self, token: str, method: str, params: dict[str, Any]) -> bool:
        """Log a request (faulted ones too: a hung request was still received)."""
        ok = secrets.compare_digest(token, self.token)
        with self._cond:
            self._state.requests.append(RecordedRequest(method, params, ok))
            self._cond.notify_all()
        return ok

    def dispatch(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if not secrets.compare_digest(token, self.token):
            raise ApiError(401, "Unauthorized")
        handler = _METHODS.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(self, params)

    # -- Bot API methods ------------------------------------------------------------------------
    def _get_me(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id = _chat_id(params)
        raw = str(params.get("text", ""))
        parse_mode = params.get("parse_mode") or None
        if parse_mode is not None and str(parse_mode).lower() not in (
            "html",
            "markdownv2",
            "markdown",
        ):
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        try:
            parsed = parse_entities(raw, parse_mode)
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not parsed.text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(parsed.text) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        with self._cond:
            if chat_id in self._state.forbidden_chats:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            message_id = self._next_message_id(chat_id)
            sent = SentMessage(message_id, chat_id, raw, parse_mode, parsed.text, dict(params))
            self._state.messages.append(sent)
            self._cond.notify_all()
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": self.bot_user,
            "text": parsed.text,
        }

    def _get_updates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset", 0) or 0)
        limit = max(1, min(100, int(params.get("limit", 100) or 100)))
        timeout = min(float(params.get("timeout", 0) or 0), self.max_long_poll_s)
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset:
                # Telegram forgets every update below the offset: that is the confirmation.
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
            while True:
                ready = [u for u in self._state.updates if u["update_id"] >= offset][:limit]
                left = deadline - time.monotonic()
                if ready or left <= 0 or self._closing.is_set():
                    return ready
                self._cond.wait(left)

    def _set_my_commands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 items")
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND.match(str(item.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._cond:
            self._state.commands[_scope_key(params)] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> Any:
        return self.commands(_scope_key(params))

    def _delete_my_commands(self, params: dict[str, Any]) -> Any:
        with self._cond:
            self._state.commands.pop(_scope_key(params), None)
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> Any:
        with self._cond:
            self._state.webhook_deleted += 1
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self._state.updates.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> Any:
        with self._cond:
            pending = len(self._state.updates)
        return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}

    def _answer_callback_query(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        return True


_METHODS: dict[str, Callable[[FakeTelegramServer, dict[str, Any]], Any]] = {
    "getme": FakeTelegramServer._get_me,
    "sendmessage": FakeTelegramServer._send_message,
    "getupdates": FakeTelegramServer._get_updates,
    "setmycommands": FakeTelegramServer._set_my_commands,
    "getmycommands": FakeTelegramServer._get_my_commands,
    "deletemycommands": FakeTelegramServer._delete_my_commands,
    "deletewebhook": FakeTelegramServer._delete_webhook,
    "getwebhookinfo": FakeTelegramServer._get_webhook_info,
    "answercallbackquery": FakeTelegramServer._answer_callback_query,
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out or was killed is expected here, not an error."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _chat_id(params: dict[str, Any]) -> int:
    value = params.get("chat_id")
    if value in (None, ""):
        raise ApiError(400, "Bad Request: chat_id is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "Bad Request: chat not found") from None


def _scope_key(params: dict[str, Any]) -> str:
    scope = params.get("scope")
    kind = scope.get("type", "default") if isinstance(scope, dict) else "default"
    return f"{kind}:{params['language_code']}" if params.get("language_code") else str(kind)


def _decode_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Telegram accepts query strings, url-encoded forms and JSON bodies; PTB sends forms
    whose non-string values are JSON-encoded."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        if content_type.startswith("application/json"):
            loaded = json.loads(body.decode("utf-8"))
            if isinstance(loaded, dict):
                params.update(loaded)
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
    return params


def _make_handler(server: FakeTelegramServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the URL carries the token, and tests read `requests()` instead."""

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = _PATH.match(parts.path)
            if match is None:
                self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            method, token = match.group("method"), match.group("token")
            decode_error: ApiError | None = None
            try:
                params = _decode_params(parts.query, body, self.headers.get("Content-Type", ""))
            except ApiError as exc:
                params, decode_error = {}, exc
            fault = server._take_fault(method) if server.record(token, method, params) else None
            if fault is not None and fault.kind in ("hang", "5xx", "429"):
                self._fault_before(fault)
                return
            try:
                if decode_error is not None:
                    raise decode_error
                result = server.dispatch(token, method, params)
            except ApiError as exc:
                payload: dict[str, Any] = {
                    "ok": False,
                    "error_code": exc.code,
                    "description": exc.description,
                }
                if exc.retry_after is not None:
                    payload["parameters"] = {"retry_after": exc.retry_after}
                self._reply(exc.code, payload)
                return
            if fault is not None:  # drop / accept_hang: the request was accepted
                if fault.kind == "accept_hang":
                    server.hold()
                self._drop()
                return
            self._reply(200, {"ok": True, "result": result})

        def _fault_before(self, fault: _Fault) -> None:
            if fault.kind == "hang":
                server.hold()
                self._drop()
            elif fault.kind == "429":
                self._reply(
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {fault.retry_after}",
                        "parameters": {"retry_after": fault.retry_after},
                    },
                )
            else:
                self._reply(
                    fault.status,
                    {
                        "ok": False,
                        "error_code": fault.status,
                        "description": "Internal Server Error",
                    },
                )

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client went away (e.g. it timed out)

    return Handler
