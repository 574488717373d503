"""The trading mode, held in a ContextVar so every store access and wallet can route by it.

Unset means DEMO: a process that forgot to choose can never touch real money.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum


class TradingMode(StrEnum):
    DEMO = "DEMO"
    REAL = "REAL"


_current_mode: ContextVar[TradingMode] = ContextVar(
    "kestrel_trading_mode", default=TradingMode.DEMO
)


def current_mode() -> TradingMode:
    return _current_mode.get()


@contextmanager
def trading_mode(mode: TradingMode | str) -> Iterator[TradingMode]:
    """Run a block in `mode`; the previous mode comes back even when the block raises."""
    resolved = TradingMode(str(mode).upper())
    token = _current_mode.set(resolved)
    try:
        yield resolved
    finally:
        _current_mode.reset(token)
