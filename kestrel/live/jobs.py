"""A job (sync, monitor pass) that events ask for: run at once if idle, else once more after
the current run; never two at a time, never a queue of identical runs.

Why: a burst of account events must make the sync run sooner, not run it ten times; and a tick
that arrives while the monitor is exiting must still be looked at, by exactly one more pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["CoalescedJob"]

log = logging.getLogger(__name__)


class CoalescedJob:
    def __init__(self, name: str, run: Callable[[str], Awaitable[None]]) -> None:
        self.name = name
        self._run = run
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.requests = 0

    def request(self, reason: str) -> asyncio.Task[None]:
        """Ask for a run; returns the task that will serve it (await it to know it ran)."""
        self.requests += 1
        self._pending.append(reason)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"job-{self.name}")
        return self._task

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def settle(self) -> None:
        """Wait for the run in progress (and the one asked for during it), if any."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._pending:
            reasons, self._pending = self._pending, []
            why = "; ".join(dict.fromkeys(reasons))
            self.runs += 1
            try:
                await self._run(why)
            except Exception:
                log.exception("%s failed (for: %s); the next request runs it again", self.name, why)
