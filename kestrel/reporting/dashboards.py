"""The operator's dashboards as plain rows: Open Orders, Executed Orders, Monitoring summary,
Audit and Portfolio. The flow layer (flows/dashboards.py) publishes them as Prefect artifacts
after every run; everything here is pure (a `Snapshot` in, rows out) except `take_snapshot`,
which reads the store and, when asked, the exchange.

Values are strings so that a table shows Decimals exactly as stored (no float rounding).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kestrel.mode import TradingMode
from kestrel.models import (
    Event,
    EventType,
    Order,
    OrderRole,
    OrderStatus,
    Position,
    PositionStatus,
    utcnow,
)
from kestrel.money import to_decimal
from kestrel.risk.controls import EmergencyStop, emergency_stop_state
from kestrel.store.base import Store

CIRCUIT_BREAKER_KEY = "circuit_breaker"
OPEN_STATUSES = (
    OrderStatus.NEW,
    OrderStatus.UNKNOWN,
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
)
EXECUTED_STATUSES = (OrderStatus.FILLED, OrderStatus.CANCELED)
DECISION_TYPES = (EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED)
DECISION_LOOKBACK = timedelta(days=3)

Row = dict[str, str]


@dataclass
class Snapshot:
    """Everything the dashboards show, read at one moment."""

    mode: TradingMode
    taken_at: datetime
    emergency_stop: EmergencyStop
    breaker: dict[str, Any] | None
    orders: list[Order]
    positions: list[Position]
    events: list[Event]
    latest_decisions: dict[str, Event]
    balance: dict[str, Any] | None = None
    prices: dict[str, Decimal] = field(default_factory=dict)
    watchlist: list[str] = field(default_factory=list)
    label: str = ""
    notes: list[str] = field(default_factory=list)
    data_source: str = ""


def take_snapshot(
    store: Store,
    *,
    exchange: Any | None = None,
    watchlist: Iterable[str] = (),
    label: str = "",
    max_events: int = 200,
    data_source: str = "",
) -> Snapshot:
    """Read the store (and the exchange's balance and prices, if one is given).

    Exchange trouble never fails a dashboard: what could not be read is noted instead."""
    symbols = list(watchlist)
    now = utcnow()
    newest = last_event_seq(store)
    recent = store.list_events(after_seq=max(0, newest - max_events))
    latest: dict[str, Event] = {}
    for event in recent:
        if event.type in DECISION_TYPES and event.symbol:
            latest[event.symbol] = event
    for symbol in symbols:
        if symbol not in latest:
            older = store.list_events(
                types=DECISION_TYPES, symbol=symbol, since=now - DECISION_LOOKBACK
            )
            if older:
                latest[symbol] = older[-1]
    breaker = store.get_state(CIRCUIT_BREAKER_KEY)
    positions = store.list_positions()
    snapshot = Snapshot(
        mode=store.mode,
        taken_at=now,
        emergency_stop=emergency_stop_state(store),
        breaker=breaker[0] if breaker else None,
        orders=store.list_orders(),
        positions=positions,
        events=recent,
        latest_decisions=latest,
        watchlist=symbols,
        label=label,
        data_source=data_source,
    )
    if exchange is not None:
        try:
            snapshot.balance = dict(exchange.fetch_balance())
        except Exception as exc:  # a dashboard shows what it can
            snapshot.notes.append(f"balance unavailable: {type(exc).__name__}: {exc}")
        held = {p.symbol for p in positions if p.status is PositionStatus.OPEN}
        for symbol in sorted(held | set(symbols)):
            try:
                snapshot.prices[symbol] = to_decimal(exchange.fetch_ticker(symbol)["last"])
            except Exception as exc:
                snapshot.notes.append(f"{symbol} price unavailable: {type(exc).__name__}")
    for position in positions:
        if position.symbol not in snapshot.prices and position.last_price is not None:
            snapshot.prices[position.symbol] = position.last_price
    return snapshot


def last_event_seq(store: Store) -> int:
    """The highest event seq, in O(log n) one-row queries (the store lists oldest first)."""
    if not store.list_events(after_seq=0, limit=1):
        return 0
    low, high = 0, 1
    while store.list_events(after_seq=high, limit=1):
        low, high = high, high * 2
    while high - low > 1:  # an event exists above `low`, none above `high`
        middle = (low + high) // 2
        if store.list_events(after_seq=middle, limit=1):
            low = middle
        else:
            high = middle
    return high


# -- formatting ------------------------------------------------------------------------------


def fmt(value: Decimal | int | float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = f"{value.normalize():f}"
        return "0" if text in ("-0", "") else text
    return str(value)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


# -- tables ----------------------------------------------------------------------------------


def open_order_rows(snapshot: Snapshot) -> list[Row]:
    """NEW / OPEN / PARTIALLY_FILLED orders, protective stop-loss and take-profit orders
    included, with the SL/TP levels each order carries for its position."""
    rows = []
    live = [o for o in snapshot.orders if o.status in OPEN_STATUSES]
    for order in sorted(live, key=lambda o: (o.symbol, o.created_at, o.client_order_id)):
        rows.append(
            {
                "symbol": order.symbol,
                "client_order_id": order.client_order_id,
                "role": order.role.value,
                "side": order.side.value,
                "type": order.type.value,
                "status": order.status.value,
                "status_source": order.status_source.value,
                "amount": fmt(order.amount),
                "filled": fmt(order.filled),
                "price": fmt(order.price),
                "stop_price": fmt(order.stop_price),
                "stop_loss": fmt(order.stop_loss),
                "take_profit": fmt(order.take_profit),
                "parent": order.parent_client_order_id or "",
                "created": _when(order.created_at),
            }
        )
    return rows


def executed_order_rows(snapshot: Snapshot, limit: int = 200) -> list[Row]:
    """FILLED and CANCELED orders, newest first, each with the exchange truth that settled
    it (status_source: create_response, open_orders, order_history, trade_history, ...)."""
    done = [o for o in snapshot.orders if o.status in EXECUTED_STATUSES]
    done.sort(key=lambda o: (o.updated_at, o.client_order_id), reverse=True)
    return [
        {
            "updated": _when(order.updated_at),
            "symbol": order.symbol,
            "client_order_id": order.client_order_id,
            "role": order.role.value,
            "side": order.side.value,
            "status": order.status.value,
            "status_source": order.status_source.value,
            "amount": fmt(order.amount),
            "filled": fmt(order.filled),
            "average_price": fmt(order.average_price),
            "fee": fees_text(order.fees),
            "reason": order.reason or "",
        }
        for order in done[:limit]
    ]


def fees_text(fees: Mapping[str, Decimal]) -> str:
    """Every fee as charged, each in its own currency ('0.001 BTC + 0.05 BNB'): amounts in
    different currencies are never added; "0" when nothing was charged."""
    return " + ".join(f"{fmt(cost)} {currency}" for currency, cost in fees.items()) or "0"


def audit_rows(snapshot: Snapshot, limit: int = 200) -> list[Row]:
    """Every event, newest first, with its reason codes and message."""
    events = sorted(snapshot.events, key=lambda e: e.seq or 0, reverse=True)[:limit]
    return [
        {
            "seq": fmt(event.seq),
            "time": _when(event.created_at),
            "type": event.type.value,
            "symbol": event.symbol or "",
            "client_order_id": event.client_order_id or "",
            "reasons": ", ".join(event.reasons),
            "message": event.message,
        }
        for event in events
    ]


@dataclass
class PortfolioTotals:
    realized_pnl: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    unrealized_pnl: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    open_value: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


def portfolio_totals(snapshot: Snapshot) -> PortfolioTotals:
    totals = PortfolioTotals()
    for position in snapshot.positions:
        quote = position.symbol.partition("/")[2]
        totals.realized_pnl[quote] += position.realized_pnl
        totals.fees[quote] += position.fees_paid
        if position.status is PositionStatus.OPEN:
            price = snapshot.prices.get(position.symbol)
            if price is not None:
                totals.unrealized_pnl[quote] += position.unrealized_pnl(price)
                totals.open_value[quote] += position.amount * price
    return totals


def portfolio_rows(snapshot: Snapshot) -> list[Row]:
    """Open positions first, then closed ones (newest first); then one TOTAL row per quote
    currency. PnL is gross of fees; fees are their own column (as in the ledger)."""
    open_positions = [p for p in snapshot.positions if p.status is PositionStatus.OPEN]
    closed = [p for p in snapshot.positions if p.status is PositionStatus.CLOSED]
    closed.sort(key=lambda p: p.closed_at or p.updated_at, reverse=True)
    rows: list[Row] = []
    for position in [*sorted(open_positions, key=lambda p: p.symbol), *closed]:
        price = snapshot.prices.get(position.symbol)
        is_open = position.status is PositionStatus.OPEN
        rows.append(
            {
                "symbol": position.symbol,
                "status": position.status.value,
                "amount": fmt(position.amount),
                "avg_entry": fmt(position.avg_entry_price),
                "last_price": fmt(price),
                "value": fmt(position.amount * price) if is_open and price is not None else "",
                "unrealized_pnl": (
                    fmt(position.unrealized_pnl(price)) if is_open and price is not None else ""
                ),
                "realized_pnl": fmt(position.realized_pnl),
                "fees": fmt(position.fees_paid),
                "stop_loss": fmt(position.stop_loss),
                "take_profit": fmt(position.take_profit),
                "opened": _when(position.opened_at),
                "closed": _when(position.closed_at),
            }
        )
    totals = portfolio_totals(snapshot)
    for quote in sorted(set(totals.realized_pnl) | set(totals.open_value)):
        rows.append(
            {
                "symbol": f"TOTAL {quote}",
                "status": "",
                "amount": "",
                "avg_entry": "",
                "last_price": "",
                "value": fmt(totals.open_value[quote]),
                "unrealized_pnl": fmt(totals.unrealized_pnl[quote]),
                "realized_pnl": fmt(totals.realized_pnl[quote]),
                "fees": fmt(totals.fees[quote]),
                "stop_loss": "",
                "take_profit": "",
                "opened": "",
                "closed": "",
            }
        )
    return rows


def equity(snapshot: Snapshot) -> dict[str, Decimal]:
    """Account value per quote currency the watchlist trades in: that currency's total
    balance plus every other held asset priced in it (assets without a price are left out
    and reported by `unpriced_assets`). Empty when no balance could be read."""
    if not snapshot.balance:
        return {}
    totals = _balance_totals(snapshot.balance)
    quotes = {s.partition("/")[2] for s in [*snapshot.watchlist, *snapshot.prices]} or {"USDT"}
    result: dict[str, Decimal] = {}
    for quote in sorted(quotes):
        value = totals.get(quote, Decimal("0"))
        for asset, amount in totals.items():
            if asset == quote or amount == 0:
                continue
            price = snapshot.prices.get(f"{asset}/{quote}")
            if price is not None:
                value += amount * price
        result[quote] = value
    return result


def unpriced_assets(snapshot: Snapshot) -> list[str]:
    if not snapshot.balance:
        return []
    quotes = {s.partition("/")[2] for s in [*snapshot.watchlist, *snapshot.prices]}
    priced = {s.partition("/")[0] for s in snapshot.prices}
    return sorted(
        asset
        for asset, amount in _balance_totals(snapshot.balance).items()
        if amount != 0 and asset not in quotes and asset not in priced
    )


def _balance_totals(balance: Mapping[str, Any]) -> dict[str, Decimal]:
    """ccxt's balance: {'BTC': {'free':..,'used':..,'total':..}, 'total': {...}, ...}."""
    found: dict[str, Decimal] = {}
    for asset, entry in balance.items():
        if isinstance(entry, Mapping) and "total" in entry and asset not in ("free", "used"):
            total = entry.get("total")
            if total is not None:
                found[asset] = to_decimal(total)
    return found


def breaker_text(breaker: Mapping[str, Any] | None) -> str:
    if not breaker:
        return "ok"
    if breaker.get("tripped") or breaker.get("active"):
        return f"TRIPPED: {breaker.get('reason', '-')}"
    return "ok"


def stop_text(stop: EmergencyStop) -> str:
    if not stop.active:
        return "off"
    since = f" since {_when(stop.changed_at)} UTC" if stop.changed_at else ""
    return f"**ACTIVE**{since} by {stop.set_by or '?'}: {stop.reason or '-'}"


def signal_rows(snapshot: Snapshot) -> list[Row]:
    """The latest decision per symbol (watchlist order first): action, signal, confidence,
    and the reason codes that decided it."""
    order = [*snapshot.watchlist, *sorted(set(snapshot.latest_decisions) - set(snapshot.watchlist))]
    rows = []
    for symbol in order:
        event = snapshot.latest_decisions.get(symbol)
        if event is None:
            rows.append({"symbol": symbol, "time": "", "decision": "no cycle yet"})
            continue
        data = event.data
        confidence = data.get("confidence")
        rows.append(
            {
                "symbol": symbol,
                "time": _when(event.created_at),
                "decision": f"{data.get('action', '?')} ({event.type.value})",
                "signal": str(data.get("signal", "")),
                "confidence": f"{float(confidence):.2f}" if confidence is not None else "",
                "price": str(data.get("price", "")),
                "data": str(data.get("data_source") or "not recorded"),
                "reasons": ", ".join(event.reasons),
            }
        )
    return rows


def monitoring_markdown(snapshot: Snapshot) -> str:
    """Mode, safety gates, equity, PnL, order counts and the latest signal per symbol."""
    totals = portfolio_totals(snapshot)
    live = [o for o in snapshot.orders if o.status in OPEN_STATUSES]
    protective = [o for o in live if o.role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)]
    failed = [o for o in snapshot.orders if o.status in (OrderStatus.FAILED, OrderStatus.REJECTED)]
    open_positions = [p for p in snapshot.positions if p.status is PositionStatus.OPEN]
    title = f"# Kestrel monitoring: {snapshot.mode.value}"
    lines = [
        title + (f" ({snapshot.label})" if snapshot.label else ""),
        "",
        f"Updated {_when(snapshot.taken_at)} UTC.",
        "",
        "| | |",
        "|---|---|",
        f"| Mode | **{snapshot.mode.value}** |",
        f"| Market data | {_cell(market_data_text(snapshot.data_source))} |",
        f"| Emergency stop | {stop_text(snapshot.emergency_stop)} |",
        f"| Circuit breaker | {breaker_text(snapshot.breaker)} |",
        f"| Live orders | {len(live)} ({len(protective)} stop-loss / take-profit) |",
        f"| Failed or rejected orders | {len(failed)} |",
        f"| Open positions | {len(open_positions)} |",
    ]
    for quote, value in equity(snapshot).items():
        lines.append(f"| Equity ({quote}) | {fmt(value.quantize(Decimal('0.01')))} |")
    for quote in sorted(set(totals.realized_pnl) | set(totals.unrealized_pnl)):
        lines.append(
            f"| PnL ({quote}) | realized {fmt(totals.realized_pnl[quote])}, "
            f"unrealized {fmt(totals.unrealized_pnl[quote])}, fees {fmt(totals.fees[quote])} |"
        )
    unpriced = unpriced_assets(snapshot)
    if unpriced:
        lines.append(f"| Not priced in equity | {', '.join(unpriced)} |")
    signals = signal_rows(snapshot)
    if signals:
        lines += [
            "",
            "## Latest signals",
            "",
            "| symbol | time (UTC) | decision | signal | confidence | price | data | reasons |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in signals:
            lines.append(
                "| "
                + " | ".join(
                    _cell(row.get(k, ""))
                    for k in (
                        "symbol",
                        "time",
                        "decision",
                        "signal",
                        "confidence",
                        "price",
                        "data",
                        "reasons",
                    )
                )
                + " |"
            )
    if snapshot.notes:
        lines += ["", "## Notes", "", *(f"- {_cell(note)}" for note in snapshot.notes)]
    return "\n".join(lines) + "\n"


def market_data_text(data_source: str) -> str:
    """The dashboard's market-data line: SIMULATED in capitals, and a missing source said."""
    if not data_source:
        return "unknown (not read for this dashboard)"
    if data_source.startswith("SIMULATED"):
        return f"**{data_source}**: invented prices, not a market"
    return data_source


def _cell(text: str) -> str:
    """Markdown table cells cannot hold pipes or newlines."""
    return text.replace("|", "\\|").replace("\n", " ")
