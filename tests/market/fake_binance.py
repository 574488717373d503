"""A tiny local HTTP server speaking the few Binance spot endpoints ccxt's binance calls for
public candles (/api/v3/time, /api/v3/klines), so CcxtLiveFeed is tested through real ccxt
and real HTTP, offline. `mode` switches it to failure behaviours."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt

from kestrel.exchange.paper_markets import ccxt_market, default_markets

MINUTE = 60_000


class FakeBinance:
    def __init__(self, first_open_ms: int, count: int) -> None:
        self.first_open_ms = first_open_ms
        self.count = count  # 1m candles that exist (the last one may still be forming)
        self.mode = "ok"  # ok | 429 | 503 | slow | bad-symbol
        self.requests: list[str] = []

    def klines(self, start: int | None, limit: int) -> list[list[Any]]:
        rows = []
        for i in range(self.count):
            ts = self.first_open_ms + i * MINUTE
            if start is not None and ts < start:
                continue
            price = 100 + i
            rows.append([ts, str(price), str(price + 2), str(price - 1), str(price + 1), "5",
                         ts + MINUTE - 1, "0", 1, "0", "0", "0"])  # fmt: skip
        return rows[:limit] if start is not None else rows[-limit:]


def _handler(fake: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if fake.mode == "slow":
                time.sleep(3)
            status: int = 200
            body: Any = None
            if fake.mode == "429":
                status, body = 429, {"code": -1003, "msg": "Too many requests."}
            elif fake.mode == "503":
                status, body = 503, {"code": -1001, "msg": "Service unavailable."}
            elif fake.mode == "bad-symbol":
                status, body = 400, {"code": -1121, "msg": "Invalid symbol."}
            elif url.path.endswith("/time"):
                body = {"serverTime": int(time.time() * 1000)}
            elif url.path.endswith("/klines"):
                start = int(query["startTime"]) if "startTime" in query else None
                body = fake.klines(start, int(query.get("limit", 500)))
            else:
                status, body = 404, {"code": -1, "msg": "unknown endpoint"}
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def binance_at(base_url: str, timeout_ms: int = 2_000) -> Any:
    """A real ccxt.binance whose every endpoint points at `base_url`, markets preloaded."""
    exchange = ccxt.binance({"timeout": timeout_ms, "enableRateLimit": False})
    exchange.urls["api"] = {key: base_url + "/api/v3" for key in exchange.urls["api"]}
    exchange.set_markets([ccxt_market(spec) for spec in default_markets().values()])
    return exchange


@contextmanager
def serve(fake: FakeBinance) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A local port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections into its backlog but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])
