"""Start-up against a Prefect API that is not quite ready: the real Prefect client talks to
the package's real `prefect server start` through a small HTTP proxy (http.server in a
thread) that answers 500 for chosen requests, as the fresh local server once did while
registering block types. tenacity's sleep is a recorder: no wall-clock waits."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

import httpx
import pytest
from tenacity import wait_fixed

from blocks.registry import block_types, register_block_types
from deployments.server import LOOPBACK, LocalPrefectServer
from deployments.startup import StartupFailed, StartupRetry, retry_startup, wait_ready

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(300)]

READY_READ = ("POST", "/api/block_types/filter")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def is_registration(method: str, path: str) -> bool:
    """A request of Block.register_type_and_schema (not the readiness read)."""
    return (
        path.startswith(("/api/block_types/", "/api/block_schemas/"))
        and (
            method,
            path,
        )
        != READY_READ
    )


@dataclass
class Proxy:
    """Forwards to `upstream`; `fail(method, path, seen_before)` says which get a 500."""

    upstream: str
    fail: Callable[[str, str, int], int | None] = lambda method, path, seen: None
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        path = target.split("?", 1)[0]
        with self.lock:
            count = sum(
                1
                for m, p, _ in self.seen
                if (m, p) == (method, path)
                or (is_registration(m, p) and is_registration(method, path))
            )
            status = self.fail(method, path, count)
            self.seen.append((method, path, status or 0))
        if status is not None:
            return httpx.Response(
                status, json={"exception_message": "Internal Server Error (injected)"}
            )
        upstream = httpx.request(
            method, f"{self.upstream}{target}", headers=headers, content=body, timeout=30
        )
        self.seen[-1] = (method, path, upstream.status_code)
        return upstream

    def requests(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.seen)


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            answer = proxy.handle(self.command, self.path, headers, body)
            content = answer.content
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in HOP_HEADERS | {"content-encoding"}:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def proxy(prefect_server: LocalPrefectServer) -> Iterator[Proxy]:
    """The proxy, and this process's Prefect client pointed at it, with the client's own
    retries off (they sleep on the wall clock) so every retry is ours."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    state = Proxy(upstream=prefect_server.url)
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://{LOOPBACK}:{server.server_address[1]}/api"
    try:
        with temporary_settings(
            updates={PREFECT_API_URL: state.url, PREFECT_CLIENT_MAX_RETRIES: 0}
        ):
            yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sleeps:
    waited: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def policy(sleeps: Sleeps, attempts: int = 6) -> StartupRetry:
    return StartupRetry(attempts=attempts, wait=wait_fixed(3), sleep=sleeps)


def test_start_up_waits_for_a_real_read_then_retries_block_registration(proxy: Proxy) -> None:
    """Health answers at once; the real read fails twice, then the first three registration
    requests fail: start-up still succeeds, after 2 + 3 retries, and registers nothing
    before the real read has succeeded."""

    def fail(method: str, path: str, seen: int) -> int | None:
        if (method, path) == READY_READ and seen < 2:
            return 500
        if is_registration(method, path) and seen < 3:
            return 500
        return None

    proxy.fail = fail
    sleeps = Sleeps()
    wait_ready(policy(sleeps))
    slugs = retry_startup("registering block types", register_block_types, policy(sleeps))

    assert slugs == [block.get_block_type_slug() for block in block_types()]
    assert sleeps.waited == [3, 3, 3, 3, 3]
    seen = proxy.requests()
    reads = [i for i, (m, p, _) in enumerate(seen) if (m, p) == READY_READ]
    assert [seen[i][2] for i in reads] == [500, 500, 200]
    health = [i for i, (_, p, s) in enumerate(seen) if p == "/api/health" and s == 200]
    assert len(health) == 3 and all(h < r for h, r in zip(health, reads, strict=True))
    registrations = [i for i, (m, p, _) in enumerate(seen) if is_registration(m, p)]
    assert registrations and registrations[0] > reads[-1]
    assert [seen[i][2] for i in registrations[:3]] == [500, 500, 500]

    from prefect import get_client

    with get_client(sync_client=True) as client:  # through the proxy, now passing all
        stored = {block_type.slug for block_type in client.read_block_types()}
    assert set(slugs) <= stored


def test_a_healthy_server_whose_reads_fail_is_not_ready(proxy: Proxy) -> None:
    """/api/health alone is not enough: readiness gives up, in one line, when reads fail."""
    proxy.fail = lambda method, path, seen: 500 if (method, path) == READY_READ else None
    sleeps = Sleeps()
    with pytest.raises(StartupFailed) as failed:
        wait_ready(policy(sleeps, attempts=4))
    message = str(failed.value)
    assert "\n" not in message
    assert message == (
        "waiting for the Prefect API to be ready failed after 4 attempts against the Prefect "
        f"API at {proxy.url}: HTTP 500 from POST /api/block_types/filter"
    )
    assert sleeps.waited == [3, 3, 3]
    assert not any(is_registration(m, p) for m, p, _ in proxy.requests())


def test_registration_that_keeps_failing_ends_in_one_line(proxy: Proxy) -> None:
    proxy.fail = lambda method, path, seen: 503 if is_registration(method, path) else None
    sleeps = Sleeps()
    with pytest.raises(StartupFailed) as failed:
        retry_startup("registering block types", register_block_types, policy(sleeps, 3))
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("registering block types failed after 3 attempts")
    assert "HTTP 503 from GET /api/block_types/slug/" in message
    assert sleeps.waited == [3, 3]


def test_a_refused_request_is_not_retried(proxy: Proxy) -> None:
    """A 4xx is the request's fault: retrying cannot help, so it is raised as it came."""
    proxy.fail = lambda method, path, seen: 422 if is_registration(method, path) else None
    sleeps = Sleeps()
    with pytest.raises(httpx.HTTPStatusError) as refused:
        retry_startup("registering block types", register_block_types, policy(sleeps))
    assert refused.value.response.status_code == 422
    assert sleeps.waited == []


def test_deployment_creation_is_retried(proxy: Proxy) -> None:
    """Prefect wraps a failed apply in DeploymentApplyError; the 500 under it still counts."""
    from prefect import get_client

    from deployments.spec import load_specs, runner_deployment

    # A name no earlier test on this server used: the apply creates, never updates.
    name = f"dashboards-{uuid4().hex[:8]}"
    spec = next(s for s in load_specs() if s.name == "dashboards").model_copy(update={"name": name})
    deployment = runner_deployment(spec)

    def fail(method: str, path: str, seen: int) -> int | None:
        return 500 if (method, path) == ("POST", "/api/deployments/") and seen < 2 else None

    proxy.fail = fail
    sleeps = Sleeps()
    deployment_id = retry_startup("creating deployment", deployment.apply, policy(sleeps))
    assert sleeps.waited == [3, 3]
    assert isinstance(deployment_id, UUID)
    with get_client(sync_client=True) as client:
        assert client.read_deployment(deployment_id).name == name


def test_an_unreachable_api_is_reported_after_the_attempts() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.server import free_port

    url = f"http://{LOOPBACK}:{free_port()}/api"  # nothing listens there
    sleeps = Sleeps()
    with temporary_settings(updates={PREFECT_API_URL: url}), pytest.raises(StartupFailed) as failed:
        wait_ready(policy(sleeps, attempts=3))
    assert sleeps.waited == [3, 3]
    assert str(failed.value).startswith(
        f"waiting for the Prefect API to be ready failed after 3 attempts against the "
        f"Prefect API at {url}: ConnectError"
    )


def test_the_proxy_forwards_json_bodies(proxy: Proxy) -> None:
    """Sanity for the double: an unfailed read passes through unchanged."""
    direct = httpx.post(f"{proxy.upstream}/api/block_types/filter", json={}, timeout=30)
    through = httpx.post(f"{proxy.url}/block_types/filter", json={}, timeout=30)
    assert json.loads(through.content) == json.loads(direct.content)
