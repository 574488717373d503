"""The HTTP side: a stdlib threading server on 127.0.0.1 that counts requests, applies faults and
hands everything else to `BinanceApi`.

Why stdlib and not uvicorn: the faults need socket-level control (close a connection without a
reply, hold one open past the client's timeout) that ASGI servers hide, and a thread-per-
connection server stops deterministically: `stop()` shuts every live socket and releases any
held request, so tests never wait for a hang to expire.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from emulator.api import BinanceApi, Request, Response
from emulator.errors import too_much_weight
from emulator.faults import FaultPlan, FaultRule
from emulator.local_server import LocalHTTPServer

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator/"
AdminHandler = Callable[[str, str, str], tuple[int, Any]]
_GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"


class RequestCounter:
    """Requests per `"METHOD /path"`, so tests can bound how many calls a sync makes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def hit(self, method: str, path: str) -> None:
        with self._lock:
            key = f"{method} {path}"
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def total(self, path: str | None = None, method: str | None = None) -> int:
        with self._lock:
            items = list(self._counts.items())
        total = 0
        for key, n in items:
            m, p = key.split(" ", 1)
            if (path is None or p == path) and (method is None or m == method.upper()):
                total += n
        return total


class EmulatorHTTPServer(LocalHTTPServer):
    """Owns the listening socket, its thread and every live connection."""

    def __init__(
        self,
        api: BinanceApi,
        faults: FaultPlan,
        admin: AdminHandler,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__("binance-emulator", host, port)
        self.api = api
        self.faults = faults
        self.admin = admin
        self.counter = RequestCounter()
        self.internal_errors: list[str] = []
        self.stop_event = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _Server(address, _Handler, self)

    def release(self) -> None:
        """Release held requests (injected timeouts)."""
        self.stop_event.set()
        self.faults.open_gates()

    def stop(self) -> None:
        """Stop accepting, release held requests, then close the live connections, so no
        keep-alive client leaves a handler thread waiting for its next request."""
        super().stop()
        with self._conn_lock:
            live = list(self._connections)
        for conn in live:
            _shutdown(conn)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], app: EmulatorHTTPServer
    ) -> None:
        super().__init__(address, handler)
        self.app = app


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment, sent at once: otherwise Nagle + delayed ACK add ~40 ms
    # to every request and a test suite doing hundreds of calls crawls.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.app.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.app.track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        path, raw_query = split.path, split.query
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            if path.startswith(ADMIN_PREFIX):
                status, body = app.admin(method, path, raw_body)
                self._send_json(Response(status, body))
                return
            app.counter.hit(method, path)
            fault = app.faults.take(method, path)
            if fault is not None and fault.kind == "hold":
                app.faults.gate(fault).wait(fault.hang_s)  # a slow exchange: then answer as usual
                fault = None
            if fault is not None and fault.kind == "latency":
                app.stop_event.wait(fault.delay_s)
                fault = None
            if fault is not None and not fault.execute and fault.kind != "tamper":
                self._apply(fault)
                return
            params = dict(parse_qsl(raw_query, keep_blank_values=True))
            if raw_body and "json" not in (self.headers.get("Content-Type") or ""):
                params.update(parse_qsl(raw_body, keep_blank_values=True))
            request = Request(
                method, path, params, raw_query, raw_body, self.headers.get("X-MBX-APIKEY")
            )
            response = app.api.handle(request)
            if fault is not None and fault.kind == "tamper":
                body = fault.tampered(response.body)
                response = Response(response.status, body, response.headers)
            elif fault is not None:
                self._apply(fault)
                return
            self._send_json(response)
        except Exception:
            # A bug in the emulator must be loud in tests, not look like an exchange error.
            trace = traceback.format_exc()
            app.internal_errors.append(trace)
            log.error("emulator internal error on %s %s\n%s", method, self.path, trace)
            msg = f"emulator internal error: {trace.strip().splitlines()[-1]}"
            self._send_json(Response(500, {"code": -1000, "msg": msg}))

    def _send_json(self, response: Response) -> None:
        data = json.dumps(response.body, separators=(",", ":")).encode()
        self._send(response.status, data, "application/json;charset=UTF-8", response.headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _apply(self, fault: FaultRule) -> None:
        if fault.kind == "timeout":
            self.server.app.stop_event.wait(fault.hang_s)
            self._drop()
        elif fault.kind == "drop":
            self._drop()
        elif fault.kind == "http_error":
            phrase = _phrase(fault.status)
            page = fault.body or _GATEWAY_PAGE.format(status=f"{fault.status} {phrase}")
            self._send(fault.status, page.encode(), "text/html", {})
        else:
            err = too_much_weight()
            data = json.dumps(err.body(), separators=(",", ":")).encode()
            headers = {"Retry-After": str(fault.retry_after_s)}
            self._send(fault.status, data, "application/json;charset=UTF-8", headers)

    def _drop(self) -> None:
        self.close_connection = True
        _shutdown(self.connection)
