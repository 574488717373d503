"""Binance user-data-stream events (executionReport, outboundAccountPosition) derived from the
matching engine by diffing its state against the last snapshot.

Why a diff and not hooks inside the matching engine: every way an order changes (placement,
an immediate fill, a candle that triggers or fills it, a cancel, an IOC expiry) already ends
in the engine's state, so one comparison after each mutation covers them all without touching
the matching code, and events come out in the order Binance sends them: NEW, each TRADE,
then the terminal report, then the account position.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from emulator.accounts import Account
from emulator.matching import MatchingEngine
from emulator.orders import Order, Trade, fmt

UserEvent = tuple[str, dict[str, Any]]  # (api_key, event payload)


@dataclass(slots=True)
class _Seen:
    status: str
    trades: int


class UserEventTracker:
    """Remembers what each account has already been told; `collect` returns what is new."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        with engine.lock:
            self._orders = {oid: _Seen(o.status, len(o.trades)) for oid, o in engine.orders.items()}
            self._balances = {key: self._balance_of(key) for key in engine.accounts}

    def _balance_of(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        acct = self.engine.account(api_key)
        return {a: (acct.free[a], acct.locked[a]) for a in acct.assets()}

    def collect(self, event_time_ms: int) -> list[UserEvent]:
        """Events for every change since the last call (call it after each mutation)."""
        events: list[UserEvent] = []
        with self.engine.lock:
            for order in sorted(self.engine.orders.values(), key=lambda o: o.order_id):
                events.extend(self._order_events(order, event_time_ms))
            for api_key in self.engine.accounts:
                now = self._balance_of(api_key)
                before = self._balances.get(api_key, {})
                changed = sorted(a for a in now if before.get(a) != now[a])
                self._balances[api_key] = now
                if changed:
                    acct = self.engine.account(api_key)
                    events.append((api_key, _account_position(changed, now, acct, event_time_ms)))
        return events

    def _order_events(self, order: Order, event_time_ms: int) -> list[UserEvent]:
        seen = self._orders.get(order.order_id)
        out: list[UserEvent] = []
        if seen is None:
            seen = _Seen("NEW", 0)
            out.append((order.api_key, execution_report(order, "NEW", "NEW", None, event_time_ms)))
        new_trades = order.trades[seen.trades :]
        for i, trade in enumerate(new_trades):
            last = i == len(new_trades) - 1
            final = last and order.status in {"FILLED", "PARTIALLY_FILLED"}
            status = order.status if final else "PARTIALLY_FILLED"
            out.append(
                (order.api_key, execution_report(order, "TRADE", status, trade, event_time_ms))
            )
        if order.status in {"CANCELED", "EXPIRED", "REJECTED"} and seen.status != order.status:
            kind = "CANCELED" if order.status == "CANCELED" else "EXPIRED"
            out.append(
                (order.api_key, execution_report(order, kind, order.status, None, event_time_ms))
            )
        self._orders[order.order_id] = _Seen(order.status, len(order.trades))
        return out


def execution_report(
    order: Order, execution: str, status: str, trade: Trade | None, event_time_ms: int
) -> dict[str, Any]:
    """One `executionReport` as Binance's spot user data stream sends it."""
    executed = sum((t.qty for t in order.trades[: _upto(order, trade)]), Decimal(0))
    cum_quote = sum((t.quote_qty for t in order.trades[: _upto(order, trade)]), Decimal(0))
    if trade is None:
        executed, cum_quote = order.executed_qty, order.cum_quote
    return {
        "e": "executionReport",
        "E": event_time_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "P": fmt(order.stop_price or Decimal(0)),
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": execution,
        "X": status,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(trade.qty if trade else Decimal(0)),
        "z": fmt(executed),
        "L": fmt(trade.price if trade else Decimal(0)),
        "n": fmt(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": trade.time if trade else order.update_time or order.time,
        "t": trade.trade_id if trade else -1,
        "I": 0,
        "w": order.is_open and status not in {"FILLED"},
        "m": trade.is_maker if trade else False,
        "M": False,
        "O": order.time,
        "Z": fmt(cum_quote),
        "Y": fmt(trade.quote_qty if trade else Decimal(0)),
        "Q": fmt(order.orig_quote_qty),
        "W": order.working_time if order.working_time != -1 else order.time,
        "V": "NONE",
    }


def _upto(order: Order, trade: Trade | None) -> int:
    if trade is None:
        return len(order.trades)
    return order.trades.index(trade) + 1


def _account_position(
    assets: list[str],
    balances: dict[str, tuple[Decimal, Decimal]],
    acct: Account,
    event_time_ms: int,
) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": event_time_ms,
        "u": acct.update_time,
        "B": [{"a": a, "f": fmt(balances[a][0]), "l": fmt(balances[a][1])} for a in assets],
    }
