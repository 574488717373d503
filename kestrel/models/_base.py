"""Common pydantic configuration for Kestrel's boundary models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

# Decimals travel as strings in JSON so no store or transport turns them into floats.
Money = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]


# A backtest runs the live code on a simulated clock: every `utcnow()` (daily loss day,
# circuit-breaker cool-off, record timestamps) then reads market time, not the wall clock.
_simulated_now: ContextVar[Callable[[], datetime] | None] = ContextVar(
    "kestrel_simulated_now", default=None
)


def utcnow() -> datetime:
    """Now: the wall clock, or the simulated clock of the backtest running in this context."""
    clock = _simulated_now.get()
    return clock() if clock is not None else datetime.now(UTC)


@contextmanager
def simulated_clock(now: Callable[[], datetime]) -> Iterator[None]:
    """Within the block (this thread / context only), `utcnow()` returns `now()`."""
    token = _simulated_now.set(now)
    try:
        yield
    finally:
        _simulated_now.reset(token)


class KestrelModel(BaseModel):
    """Strict-ish base: unknown fields are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
