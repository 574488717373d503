"""Per-key rate limits: a token bucket per key id, in memory.

In memory because the API is one process (uvicorn, one worker) and a limit only has to hold
the line against a runaway client; `rate` tokens a second refill up to `burst`. The clock is
injectable so tests decide when time passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from api.auth.tiers import AuthError


class RateLimiter:
    def __init__(
        self, rate: float = 10.0, burst: int = 40, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` tokens from `key`'s bucket, or AuthError 429 with the wait."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                wait = (cost - tokens) / self.rate
                raise AuthError(
                    429, "rate_limited", f"too many requests; retry in {wait:.1f} s", wait
                )
            self._buckets[key] = (tokens - cost, now)
