"""Retry policy shared by every task: transient exchange errors only, exponential backoff
with jitter. A rejected or invalid order is final and never retried. What is transient is
kestrel.exchange.errors.classify's word (ccxt's NetworkError family, Kestrel's
TransientExchangeError, socket timeouts), decided by class."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from kestrel.exchange.errors import is_transient


def transient_only(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as raised:  # result unavailable: judge by what was raised instead
        exc = raised
    return isinstance(exc, BaseException) and is_transient(exc)


RETRY_OPTIONS: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": transient_only,
}
