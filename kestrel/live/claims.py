"""Once per symbol and candle, across processes: a store-level claim.

Two engines (a restart overlapping the old process, or two machines) must never run the same
symbol's cycle for the same closed candle twice. The claim is a state document written with
`expected_version=0`, which only one writer can create (the store's compare-and-set); the
loser learns it was already claimed and by whom. A candle the engine could not run (a hole it
could not fill, the stream down past the bounded delay) is recorded as an event with its
reason, so nothing is skipped silently; its claim is taken too, so a later engine does not run
a stale cycle for it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from kestrel.errors import ConcurrentUpdate
from kestrel.mode import current_mode
from kestrel.models import Event, EventType
from kestrel.store.base import Store

__all__ = [
    "CANDLE_MISSED",
    "CandleClaim",
    "candle_key",
    "claim_candle",
    "last_claimed",
    "record_missed",
]

PREFIX = "live:candle:"
CANDLE_MISSED = "CANDLE_MISSED"


class CandleClaim(BaseModel):
    symbol: str
    timeframe: str
    open_time: int
    holder: str
    outcome: str = "claimed"  # "claimed" (a cycle runs) or "missed: <reason>"


def candle_key(exchange_id: str, symbol: str, timeframe: str, open_time: int) -> str:
    return f"{PREFIX}{exchange_id}:{symbol}:{timeframe}:{open_time}"


def _iso(open_time: int) -> str:
    return datetime.fromtimestamp(open_time / 1000, tz=UTC).isoformat()


def last_claimed(store: Store, exchange_id: str, symbol: str, timeframe: str) -> int | None:
    """The open time of the newest candle claimed (run or missed) for this series, if any:
    where a restarted engine resumes."""
    prefix = f"{PREFIX}{exchange_id}:{symbol}:{timeframe}:"
    rows = store.list_state(prefix, limit=1, reverse=True)
    return CandleClaim.model_validate(rows[0][1]).open_time if rows else None


def claim_candle(store: Store, exchange_id: str, claim: CandleClaim) -> CandleClaim | None:
    """Take the candle; None when it is ours now, else the claim that got there first."""
    key = candle_key(exchange_id, claim.symbol, claim.timeframe, claim.open_time)
    try:
        store.put_state(key, claim.model_dump(mode="json"), expected_version=0)
    except ConcurrentUpdate:
        stored = store.get_state(key)
        if stored is None:  # cannot happen with a working store; say so rather than guess
            raise
        return CandleClaim.model_validate(stored[0])
    return None


def record_missed(
    store: Store, exchange_id: str, claim: CandleClaim, reason: str
) -> CandleClaim | None:
    """Claim the candle as missed and record one TRADE_BLOCKED event naming why (idempotent:
    the event id is the candle's). Returns the earlier claim if someone ran it after all."""
    missed = claim.model_copy(update={"outcome": f"missed: {reason}"})
    key = candle_key(exchange_id, claim.symbol, claim.timeframe, claim.open_time)
    earlier = claim_candle(store, exchange_id, missed)
    if earlier is not None:
        return earlier
    store.append_events(
        [
            Event(
                event_id=f"missed:{key}",
                type=EventType.TRADE_BLOCKED,
                mode=current_mode(),
                symbol=claim.symbol,
                reasons=[CANDLE_MISSED],
                message=(
                    f"{claim.symbol} {claim.timeframe} candle {_iso(claim.open_time)}: no cycle "
                    f"ran for it: {reason}"
                ),
                data={"open_time": claim.open_time, "timeframe": claim.timeframe},
            )
        ]
    )
    return None
