"""Reconnect delays: exponential from `base_s`, capped at `cap_s`, reset by a good message.

Why not tenacity: a stream is not a call to retry but a loop that must keep going forever;
the loop asks for the next delay and sleeps through an injected `sleep`, so tests run without
waiting and assert the exact delays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    _failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.factor < 1:
            raise ValueError(
                f"backoff needs 0 < base_s <= cap_s and factor >= 1, got "
                f"base_s={self.base_s} cap_s={self.cap_s} factor={self.factor}"
            )

    @property
    def failures(self) -> int:
        """Consecutive failures since the last reset."""
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = min(self.cap_s, self.base_s * self.factor**self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        self._failures = 0
