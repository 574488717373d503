"""Account events arrive twice (a reconnect replays, REST polling sees what the stream saw)
and out of order (two connections, or a late message). The filter keeps, per order, the most
advanced state seen: a report that does not move it forward is dropped, so a stale "open"
never follows "closed" into the engine and a duplicate never nudges a second sync."""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

from pydantic import BaseModel

__all__ = ["OrderUpdate", "OrderUpdateFilter"]

_RANK = {"open": 0, "closed": 2, "canceled": 2, "expired": 2, "rejected": 2}


class OrderUpdate(BaseModel):
    """What the engine needs from a ccxt order structure (watch_orders / fetch_order)."""

    order_id: str
    symbol: str
    status: str
    filled: Decimal
    timestamp: int | None = None

    def progress(self) -> tuple[int, Decimal, int]:
        return (_RANK.get(self.status, 1), self.filled, self.timestamp or 0)


class OrderUpdateFilter:
    """Bounded memory: the newest `keep` orders."""

    def __init__(self, keep: int = 10_000) -> None:
        self._seen: OrderedDict[str, tuple[int, Decimal, int]] = OrderedDict()
        self._keep = keep

    def accept(self, update: OrderUpdate) -> bool:
        """True when `update` moves its order forward (new state, more filled, or later)."""
        before = self._seen.get(update.order_id)
        now = update.progress()
        if before is not None and now <= before:
            return False
        self._seen[update.order_id] = now
        self._seen.move_to_end(update.order_id)
        while len(self._seen) > self._keep:
            self._seen.popitem(last=False)
        return True
