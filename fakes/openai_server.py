"""A local server of ours that speaks the OpenAI chat-completions protocol, for the LLM
analyst's tests and for offline SWARM demos.

Why a real HTTP server rather than a mocked client: the analyst's promises are about what
happens on the wire - a whole request bounded in time, HTTP errors, a server that streams
when asked not to, junk bodies - so the real httpx client must talk to something that can
fail in all those ways. Point the analyst at `server.base_url` (it ends in /v1).

- POST /v1/chat/completions: validates the request like the real API (JSON body, `model`,
  non-empty `messages` of {role, content}, known model, Bearer key when one is set) and answers
  a `chat.completion` object, or Server-Sent Events when the request says stream=true.
- Answers are scripted (`script(...)`: verdicts, raw content, HTTP errors, junk bodies, slow
  or dripping answers, dropped connections, forced streaming) and otherwise come from
  `responder` (default: HOLD). Hangs are bounded by `max_hang_s` and released at stop.
- GET /v1/models lists the model. GET /fng/ serves a Fear & Greed style sentiment index
  (`set_sentiment`, `fail_sentiment`) for the sentiment analyst.
- Every request is recorded (path, headers, parsed body).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from emulator.local_server import LocalHTTPServer

ReplyKind = Literal["content", "error", "raw", "drop", "stream"]
DEFAULT_MODEL = "kestrel-test-model"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the class methods."""

    kind: ReplyKind
    content: str = ""
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0  # silence before the status line
    drip_interval_s: float = 0.0  # > 0: the body goes out one byte per interval
    finish_reason: str = "stop"
    refusal: str | None = None

    @classmethod
    def verdict(
        cls,
        action: str,
        confidence: float,
        reasoning: str = "scripted verdict",
        **levels: float | None,
    ) -> Reply:
        payload: dict[str, Any] = {
            "action": action,
            "confidence": confidence,
            "reasoning": reasoning,
        }
        payload.update(levels)
        return cls(kind="content", content=json.dumps(payload))

    @classmethod
    def text(cls, content: str, finish_reason: str = "stop") -> Reply:
        """The assistant's message content verbatim (junk JSON, fenced JSON, prose, ...)."""
        return cls(kind="content", content=content, finish_reason=finish_reason)

    @classmethod
    def refused(cls, why: str) -> Reply:
        return cls(kind="content", content="", refusal=why)

    @classmethod
    def error(cls, status: int, message: str = "error", type_: str = "server_error") -> Reply:
        body = json.dumps({"error": {"message": message, "type": type_, "code": None}})
        return cls(kind="error", status=status, body=body.encode())

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
        """A response body that is not what the protocol promises."""
        return cls(kind="raw", status=status, body=body, content_type=content_type)

    @classmethod
    def drop(cls) -> Reply:
        """Close the connection without answering."""
        return cls(kind="drop")

    @classmethod
    def streamed(cls, content: str) -> Reply:
        """Answer as Server-Sent Events even though the request said stream=false."""
        return cls(kind="stream", content=content)

    def slow(self, delay_s: float) -> Reply:
        return Reply(**{**self.__dict__, "delay_s": delay_s})

    def dripping(self, interval_s: float) -> Reply:
        return Reply(**{**self.__dict__, "drip_interval_s": interval_s})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Responder = Callable[[dict[str, Any]], Reply]


def hold_responder(request: dict[str, Any]) -> Reply:
    return Reply.verdict("HOLD", 0.5, "no scripted answer: holding")


def trend_responder(request: dict[str, Any]) -> Reply:
    """A deterministic stand-in analyst for offline demos: reads the indicators the LLM
    analyst sends and follows the EMA trend unless RSI is stretched."""
    try:
        payload = json.loads(request["messages"][-1]["content"])
        values = payload["indicators"]
        rsi, fast, slow = values["rsi"], values["ema_fast"], values["ema_slow"]
        price = float(payload["price"])
    except (KeyError, IndexError, TypeError, ValueError):
        return Reply.verdict("HOLD", 0.0, "could not read the indicators")
    if rsi is None or fast is None or slow is None:
        return Reply.verdict("HOLD", 0.0, "indicators missing")
    if fast > slow and rsi < 65:
        return Reply.verdict(
            "BUY", 0.7, f"uptrend, RSI {rsi:.0f}", stop_loss=round(price * 0.98, 8)
        )
    if fast < slow or rsi > 75:
        return Reply.verdict("SELL", 0.65, f"downtrend or stretched, RSI {rsi:.0f}")
    return Reply.verdict("HOLD", 0.5, "no edge")


@dataclass
class _State:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    sentiment: tuple[float, str] = (50.0, "Neutral")
    sentiment_failures: deque[int] = field(default_factory=deque)
    answering: int = 0  # completions being answered right now (delayed or dripping)
    most_answering: int = 0  # the most ever answered at once (concurrent clients)
    answered: int = 0


class FakeChatServer(LocalHTTPServer):
    """Start with `with FakeChatServer() as server:`; every hang ends at stop()."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = (DEFAULT_MODEL,),
        responder: Responder = hold_responder,
        max_hang_s: float = 30.0,
    ) -> None:
        super().__init__("fake-openai")
        self.api_key = api_key
        self.models = models
        self.responder = responder
        self.max_hang_s = max_hang_s
        self._state = _State()
        self._lock = threading.Lock()
        self._closing = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(address, _handler_class(self))
        httpd.daemon_threads = True
        return httpd

    def release(self) -> None:
        """End the slow and dripping answers in flight."""
        self._closing.set()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def sentiment_url(self) -> str:
        return f"{self.url}/fng/?limit=1"

    # -- scripting and inspection ---------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._state.replies.extend(replies)

    def set_sentiment(self, value: float, label: str = "") -> None:
        with self._lock:
            self._state.sentiment = (value, label)

    def fail_sentiment(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._state.sentiment_failures.extend([status] * times)

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._state.requests if path is None or r.path.startswith(path)]

    def completions(self) -> list[RecordedRequest]:
        return self.requests("/v1/chat/completions")

    @property
    def answering(self) -> int:
        """Completions still being answered (a slow or dripping reply not yet fully sent).
        A client that gave up while this is > 0 gave up before the server finished."""
        with self._lock:
            return self._state.answering

    @property
    def most_answering(self) -> int:
        """The most completions ever in progress at once: > 1 means concurrent clients."""
        with self._lock:
            return self._state.most_answering

    @property
    def answered(self) -> int:
        with self._lock:
            return self._state.answered

    def _answering(self, delta: int) -> None:
        with self._lock:
            self._state.answering += delta
            self._state.most_answering = max(self._state.most_answering, self._state.answering)
            if delta < 0:
                self._state.answered += 1

    # -- used by the handler threads ------------------------------------------------------------
    def hold(self, seconds: float) -> None:
        self._closing.wait(min(seconds, self.max_hang_s))

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._state.requests.append(request)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._state.replies:
                return self._state.replies.popleft()
        return self.responder(body)

    def sentiment_answer(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._state.sentiment_failures:
                return self._state.sentiment_failures.popleft(), {"error": "unavailable"}
            value, label = self._state.sentiment
        return 200, {
            "name": "Fear and Greed Index",
            "data": [
                {
                    "value": f"{value:g}",
                    "value_classification": label,
                    "timestamp": str(int(time.time())),
                }
            ],
            "metadata": {"error": None},
        }


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    message["refusal"] = reply.refusal
    return {
        "id": f"chatcmpl-kestrel-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _problem(body: Any, known_models: tuple[str, ...]) -> tuple[int, str, str] | None:
    """(status, message, code) of a request the real API would refuse."""
    if not isinstance(body, dict):
        return 400, "We could not parse the JSON body of your request.", "invalid_json"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return 400, "you must provide a model parameter", "missing_model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "'messages' must be a non-empty array", "invalid_messages"
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role")
            not in (
                "system",
                "user",
                "assistant",
                "developer",
                "tool",
            )
            or not isinstance(message.get("content"), str)
        ):
            return 400, f"Invalid value for 'messages[{index}]'", "invalid_messages"
    if model not in known_models:
        return 404, f"The model `{model}` does not exist", "model_not_found"
    return None


def _handler_class(server: FakeChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, content_type: str, drip_s: float = 0.0) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if drip_s <= 0:
                self.wfile.write(body)
                return
            for index in range(len(body)):
                if server._closing.is_set():
                    return
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                server.hold(drip_s)

        def _json(self, status: int, payload: Any, drip_s: float = 0.0) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", drip_s)

        def _error(self, status: int, message: str, code: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._json(status, {"error": {"message": message, "type": kind, "code": code}})

        def do_GET(self) -> None:
            server.record(RecordedRequest("GET", self.path, dict(self.headers.items()), None))
            if self.path.startswith("/fng"):
                status, payload = server.sentiment_answer()
                self._json(status, payload)
            elif self.path == "/v1/models":
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": m, "object": "model", "owned_by": "kestrel"}
                            for m in server.models
                        ],
                    },
                )
            else:
                self._error(404, f"Unknown path {self.path}", "not_found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            server.record(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
            if self.path != "/v1/chat/completions":
                self._error(404, f"Unknown path {self.path}", "not_found")
                return
            if server.api_key is not None:
                sent = self.headers.get("Authorization", "")
                if sent != f"Bearer {server.api_key}":
                    self._error(401, "Incorrect API key provided.", "invalid_api_key")
                    return
            problem = _problem(body, server.models)
            if problem is not None:
                self._error(*problem)
                return
            reply = server.next_reply(body)
            server._answering(+1)
            try:
                self._answer(body, reply)
            except OSError:  # the client gave up (timeout) and closed: nothing to answer
                self.close_connection = True
            finally:
                server._answering(-1)

        def _answer(self, body: dict[str, Any], reply: Reply) -> None:
            if reply.delay_s > 0:
                server.hold(reply.delay_s)
                if server._closing.is_set():
                    return
            if reply.kind == "drop":
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if reply.kind in ("error", "raw"):
                self._send(reply.status, reply.body, reply.content_type, reply.drip_interval_s)
                return
            if reply.kind == "stream" or body.get("stream") is True:
                self._stream(body["model"], reply)
                return
            self._json(200, _completion(body["model"], reply), reply.drip_interval_s)

        def _stream(self, model: str, reply: Reply) -> None:
            events = []
            for piece in [reply.content[i : i + 8] for i in range(0, len(reply.content), 8)]:
                chunk = {
                    "id": "chatcmpl-kestrel-stream",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                events.append(f"data: {json.dumps(chunk)}\n\n")
            events.append("data: [DONE]\n\n")
            self._send(200, "".join(events).encode(), "text/event-stream")

    return Handler
