"""One stream kept alive: call a ccxt.pro `watch_*` in a loop, hand each result on, reconnect
with backoff after an error, and notice silence.

ccxt.pro reconnects by itself on the next `watch_*` call after a dropped connection; what it
does not do is wait between attempts (a dead endpoint would be hammered) or notice a
connection that is open but says nothing. `consume` adds the first, `Watchdog` the second:
the engine checks it on its own schedule and falls back to REST polling while it is silent.
Time comes from an injected clock and sleep, so tests drive both without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kestrel.live.backoff import Backoff

__all__ = ["Clock", "Sleep", "Watchdog", "consume"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Watchdog:
    """Silent = no message for `silence_s` by `clock` (also before the first message)."""

    name: str
    silence_s: float
    clock: Clock
    _last: float = field(default=0.0, init=False)
    messages: int = field(default=0, init=False)
    reconnects: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._last = self.clock()

    def beat(self) -> None:
        self._last = self.clock()
        self.messages += 1

    def silent_for(self) -> float:
        return self.clock() - self._last

    def silent(self) -> bool:
        return self.silent_for() > self.silence_s


async def consume[T](
    watch: Callable[[], Awaitable[T]],
    handle: Callable[[T], Awaitable[None]],
    *,
    watchdog: Watchdog,
    backoff: Backoff,
    sleep: Sleep = asyncio.sleep,
    stop: asyncio.Event,
) -> None:
    """Until `stop`: result = await watch(); await handle(result). An exception from `watch`
    (a dropped connection, a refused subscription) waits `backoff` and tries again; one from
    `handle` is logged and the stream goes on (one bad message must not end it)."""
    while not stop.is_set():
        try:
            result = await watch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = backoff.next_delay()
            watchdog.reconnects += 1
            log.warning(
                "stream %s failed (%s: %s); attempt %d again in %.1f s",
                watchdog.name,
                type(exc).__name__,
                exc,
                backoff.failures,
                delay,
            )
            await sleep(delay)
            continue
        backoff.reset()
        watchdog.beat()
        try:
            await handle(result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stream %s: handling a message failed", watchdog.name)
