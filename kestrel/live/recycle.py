"""When a long-lived engine process should end so a fresh one takes over (process recycling).

Why: long-lived Python processes that run many Prefect subflows may keep memory they never
return (bench/live.py --soak measures it). A bound on cycles run or on resident memory ends
the engine cleanly between cycles; its deployment (or `kestrel live run` under a supervisor)
starts a fresh process, which resumes after the newest claimed candle in the store: candles
that closed in between are recorded as missed, no decision is replayed.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RecycleBound", "rss_mb"]

_STATUS = Path("/proc/self/status")


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MiB. Where /proc is missing (macOS),
    the peak resident size: it only grows, so a bound on it still ends a growing process."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class RecycleBound(BaseModel):
    """Either bound (or both) ends the engine; None: no bound (run until stopped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_cycles: int | None = Field(
        default=None, ge=1, description="end after this many cycles have run in the process"
    )
    above_rss_mb: float | None = Field(
        default=None, gt=0, description="end once resident memory exceeds this many MiB"
    )

    def reason(self, cycles_done: int, rss: float | None = None) -> str | None:
        """Why the process should end now, None while within its bounds."""
        if self.after_cycles is not None and cycles_done >= self.after_cycles:
            return f"{cycles_done} cycle(s) run, bound {self.after_cycles}"
        if self.above_rss_mb is not None:
            now = rss_mb() if rss is None else rss
            if now > self.above_rss_mb:
                return f"resident memory {now:.0f} MiB > bound {self.above_rss_mb:.0f} MiB"
        return None
