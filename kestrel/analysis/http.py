"""One HTTP request with a hard bound on its whole duration, for analysts that ask a service.

httpx's timeouts bound each phase (connect, each read), not the whole exchange: a server
that drips one byte a second never trips a 10 s read timeout. So the request runs in a worker
thread and the caller waits at most `timeout_s`; on expiry the client is closed under the
worker (which also checks a deadline between chunks) and the caller abstains at once.
Failures come back as AnalystAbstained with a machine-readable kind.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from kestrel.errors import AnalystAbstained


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    elapsed_s: float


def bounded_request(
    method: str,
    url: str,
    *,
    timeout_s: float,
    connect_timeout_s: float = 5.0,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = 262_144,
) -> HttpAnswer:
    """The status and body, within `timeout_s`; AnalystAbstained(timeout | network |
    malformed) otherwise. Never raises anything else."""
    started = time.monotonic()
    deadline = started + timeout_s
    cancelled = threading.Event()
    outcome: dict[str, Any] = {}
    client = httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
        follow_redirects=False,
    )

    def run() -> None:
        try:
            with client.stream(method, url, json=json_body, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise AnalystAbstained("malformed", f"answer larger than {max_bytes} bytes")
                    if cancelled.is_set() or time.monotonic() > deadline:
                        raise AnalystAbstained("timeout", f"no complete answer in {timeout_s:g}s")
                    chunks.append(chunk)
                outcome["answer"] = HttpAnswer(
                    response.status_code, b"".join(chunks), time.monotonic() - started
                )
        except AnalystAbstained as exc:
            outcome["error"] = exc
        except httpx.TimeoutException as exc:
            outcome["error"] = AnalystAbstained("timeout", f"{type(exc).__name__} after "
                                                f"{time.monotonic() - started:.1f}s")  # fmt: skip
        except Exception as exc:  # transport errors, a closed client, a bad URL, ...
            outcome["error"] = AnalystAbstained("network", f"{type(exc).__name__}: {exc}"[:300])

    worker = threading.Thread(target=run, name="kestrel-analyst-http", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        cancelled.set()
        client.close()  # unblocks the worker's socket read; its result is discarded
        raise AnalystAbstained("timeout", f"no complete answer in {timeout_s:g}s")
    client.close()
    if "error" in outcome:
        raise outcome["error"]
    answer: HttpAnswer = outcome["answer"]
    return answer
