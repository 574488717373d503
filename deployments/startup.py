"""Start-up calls against a Prefect API that may have only just come up.

The first `kestrel serve` on a fresh data dir once failed with a 500 from the new local
server while registering block types: /api/health answered before the database did. So a
start-up (1) waits until the API is ready, meaning it answers /api/health AND a real read
(the block types, through the Prefect client), and (2) retries each start-up call (block
registration, work pool and deployment creation, the dead-man's switch) on transient errors
only: a 5xx or 429, a connection error, a timeout. Every one of those calls is an idempotent
upsert, so running one again is safe. Attempts are bounded; when they run out, one
`StartupFailed` line says what failed, against which API, after how many attempts and why;
the traceback goes to the debug log.

The wait between attempts is tenacity's, and so is the sleep: `StartupRetry` carries both, so
tests pass a sleep that only records (no wall-clock waits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential

from kestrel.errors import KestrelError

__all__ = ["StartupFailed", "StartupRetry", "is_transient", "retry_startup", "wait_ready"]

log = logging.getLogger("kestrel.startup")


class StartupFailed(KestrelError):
    """A start-up call to the Prefect API still failed transiently after the last attempt."""


def _default_wait() -> wait_base:
    return wait_exponential(multiplier=0.5, max=10)


@dataclass(frozen=True)
class StartupRetry:
    """How often and how long to retry. The default waits 0.5, 1, 2, 4, 8, 10, 10 s (about
    35 s over 8 attempts): long enough for a fresh SQLite server to settle, short enough that
    a server that is really down is reported rather than waited on forever."""

    attempts: int = 8
    wait: wait_base = field(default_factory=_default_wait)
    sleep: Callable[[float], None] = time.sleep


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes: Prefect wraps some (a deployment's apply raises
    DeploymentApplyError from the HTTP error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_error(exc: BaseException) -> BaseException | None:
    for item in _chain(exc):
        if isinstance(item, httpx.HTTPStatusError | httpx.TransportError):
            return item
    return None


def is_transient(exc: BaseException) -> bool:
    """A 5xx or 429 answer, a connection error or a timeout: worth another try. A 4xx (a
    request the server refuses) or any other error is not."""
    found = _http_error(exc)
    if isinstance(found, httpx.HTTPStatusError):
        status = found.response.status_code
        return status >= 500 or status == 429
    return isinstance(found, httpx.TransportError)


def describe(exc: BaseException) -> str:
    """One line for what went wrong: the status and request, or the error's first line."""
    found = _http_error(exc) or exc
    if isinstance(found, httpx.HTTPStatusError):
        request = found.request
        return f"HTTP {found.response.status_code} from {request.method} {request.url.path}"
    text = str(found).splitlines()[0][:200] if str(found) else ""
    return f"{type(found).__name__}: {text}" if text else type(found).__name__


def _api_url() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().api.url or "(no PREFECT_API_URL: ephemeral)")


def retry_startup[T](what: str, call: Callable[[], T], policy: StartupRetry | None = None) -> T:
    """`call()`, again on a transient error, at most `policy.attempts` times; then
    StartupFailed naming `what`. A non-transient error is raised at once, unchanged."""
    policy = policy or StartupRetry()

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: %s (attempt %d of %d), retrying in %.1f s",
            what,
            describe(error) if error else "failed",
            state.attempt_number,
            policy.attempts,
            state.upcoming_sleep,
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=policy.wait,
        sleep=policy.sleep,
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
    )
    try:
        return retrying(call)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        assert last is not None  # tenacity retries on exceptions only here
        log.debug("%s failed", what, exc_info=last)
        raise StartupFailed(
            f"{what} failed after {policy.attempts} attempts against the Prefect API at "
            f"{_api_url()}: {describe(last)}"
        ) from None


def _read_ready() -> None:
    """Health, then a real read: /api/health answers before the database is usable."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
        if problem is not None:
            raise problem
        client.read_block_types()


def wait_ready(policy: StartupRetry | None = None) -> None:
    """Return once the configured Prefect API answers its health check and a real read."""
    retry_startup("waiting for the Prefect API to be ready", _read_ready, policy)
