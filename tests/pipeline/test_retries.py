"""Tasks retry transient exchange errors only; a rejected order is final at once."""

from __future__ import annotations

import ccxt
import pytest

from kestrel.errors import InsufficientFunds, OrderRejected, TransientExchangeError

pytestmark = pytest.mark.prefect


def flaky(failures: list[BaseException]) -> tuple[object, list[int]]:
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    from tasks.retry import RETRY_OPTIONS

    calls: list[int] = []

    @task(cache_policy=NO_CACHE, **{**RETRY_OPTIONS, "retry_delay_seconds": 0})
    def step() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "done"

    return step, calls


@pytest.mark.parametrize(
    "error",
    [
        ccxt.NetworkError("connection reset"),
        ccxt.RequestTimeout("timed out"),
        ccxt.RateLimitExceeded("429"),
        ccxt.ExchangeNotAvailable("503"),
        TransientExchangeError("paper feed unreachable"),
    ],
)
def test_transient_errors_are_retried(prefect_harness: None, error: BaseException) -> None:
    from prefect import flow

    step, calls = flaky([error, error])

    @flow
    def run() -> str:
        return step()  # type: ignore[operator,no-any-return]

    assert run() == "done"
    assert len(calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        ccxt.InsufficientFunds("-2010"),
        ccxt.InvalidOrder("-1013 filter failure"),
        ccxt.AuthenticationError("bad key"),
        InsufficientFunds("paper: not enough USDT"),
        OrderRejected("below min notional"),
        ValueError("a bug is not retried either"),
    ],
)
def test_final_errors_are_not_retried(prefect_harness: None, error: BaseException) -> None:
    from prefect import flow

    step, calls = flaky([error])

    @flow
    def run() -> str:
        return step()  # type: ignore[operator,no-any-return]

    with pytest.raises(type(error)):
        run()
    assert len(calls) == 1
