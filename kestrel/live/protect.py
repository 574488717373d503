"""The tick path into the existing position monitor, and the levels it watches.

`monitor_at` runs kestrel.execution.monitor.monitor_positions (its checks, lease, exit order,
events)
with `fetch_ticker` answered by the stream's last price, so an exit triggered by a tick uses
that tick. `levels_from_store` reads what the engine checks ticks against.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from kestrel.execution.monitor import MonitorReport, monitor_positions
from kestrel.live.ticks import Levels, StreamPricedExchange, levels_of
from kestrel.models import LIVE_STATUSES, OrderRole, OrderStatus, PositionStatus
from kestrel.runtime import Runtime
from kestrel.store.base import Store

__all__ = ["levels_from_store", "monitor_at"]


def monitor_at(rt: Runtime, prices: StreamPricedExchange) -> MonitorReport:
    """One monitor pass, priced by the streams where they have a price."""
    return monitor_positions(dataclasses.replace(rt, exchange=prices))


def levels_from_store(store: Store) -> list[Levels]:
    """Open positions with their native stop (the highest live stop-loss order), if any;
    the same rule as the monitor's `_native_stop_covers`."""
    levels = []
    for position in store.list_positions(status=PositionStatus.OPEN):
        stops = [
            o.stop_price
            for o in store.list_orders(
                symbol=position.symbol, statuses=LIVE_STATUSES, roles=(OrderRole.STOP_LOSS,)
            )
            if o.position_id == position.position_id
            and o.stop_price is not None
            and o.status is not OrderStatus.NEW  # acknowledged: resting on the exchange
        ]
        native: Decimal | None = max(stops) if stops else None
        levels.append(levels_of(position, native))
    return levels
