"""A real API over the manual-trading test runtimes (tests/manual/conftest.py): DEMO is the
PaperExchange on a ReplayFeed, REAL the Binance emulator through ccxt. The app runs in a real
uvicorn on a free port; tests talk to it with httpx, the websockets client and the MCP SDK.

Keys are hashed with argon2 at a lower cost than production (still argon2, still verified)
so that the suite does not spend seconds hashing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from api import ApiConfig, ApiContext, Backend, build_context, create_app
from api.auth.keys import KeyBook
from kestrel.runtime import Runtime
from tests.manual.conftest import (  # noqa: F401  (fixtures)
    Clock,
    clock,
    demo_rt,
    demo_store,
    emulator,
    real_rt,
)

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
SECRET = "x" * 48


@dataclass
class Served:
    ctx: ApiContext
    url: str
    clock: Clock

    def key(self, name: str, *tiers: str, **kw: object) -> str:
        return self.ctx.keys.create(name, list(tiers), by="pytest", **kw).secret  # type: ignore[arg-type]

    def login(self, secret: str) -> dict[str, object]:
        with httpx.Client(base_url=self.url) as http:
            answer = http.post("/api/auth/token", json={"api_key": secret})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def client(self, secret: str | None = None) -> httpx.Client:
        headers = {}
        if secret is not None:
            headers["Authorization"] = f"Bearer {self.login(secret)['access_token']}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def serve(rt: Runtime, now: Clock, config: ApiConfig | None = None) -> Iterator[Served]:
    backend = Backend(base=rt.settings, store=rt.store, runtime=lambda: rt)
    keys = KeyBook(backend.store, hasher=CHEAP, now=now)
    ctx = build_context(backend, config or ApiConfig(ws_poll_s=0.05), jwt_secret=SECRET, keys=keys)
    app = create_app(ctx)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started:  # startup, not a timing assertion: wait until it listens
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        started.wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(ctx=ctx, url=f"http://127.0.0.1:{port}", clock=now)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def demo_api(demo_rt: Runtime, clock: Clock) -> Iterator[Served]:  # noqa: F811
    yield from serve(demo_rt, clock)


@pytest.fixture
def real_api(real_rt: Runtime, clock: Clock) -> Iterator[Served]:  # noqa: F811
    yield from serve(real_rt, clock)
