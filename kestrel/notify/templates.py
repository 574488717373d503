"""One message template per event type.

Events carry their facts in `data` (written by kestrel.orders, kestrel.ledger, ...); a
template picks the ones a human acts on (symbol, side, price, quantity, order role, status
source, PnL) and always shows the mode, so a DEMO fill is never mistaken for a REAL one.
The footer carries `#<seq>`: the same event always has the same reference, which is how a
reader recognises the rare repeat after a crash (see kestrel.notify.outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from kestrel.models import Event, EventType
from kestrel.notify.render import Card, fmt_num

_HEAD: dict[EventType, tuple[str, str]] = {
    EventType.ORDER_CREATED: ("🆕", "Order placed"),
    EventType.ORDER_EXECUTED: ("✅", "Order filled"),
    EventType.ORDER_PARTIALLY_FILLED: ("◐", "Order partially filled"),
    EventType.ORDER_CANCELED: ("✖️", "Order canceled"),
    EventType.ORDER_FAILED: ("❗", "Order failed"),
    EventType.ORDER_REJECTED: ("⛔", "Order rejected"),
    EventType.SLTP_CREATED: ("🛡", "Stop-loss / take-profit set"),
    EventType.SLTP_FAILED: ("❗", "Stop-loss / take-profit FAILED"),
    EventType.POSITION_OPENED: ("📈", "Position opened"),
    EventType.POSITION_CLOSED: ("📉", "Position closed"),
    EventType.TRADE_DECIDED: ("🧭", "Trade decided"),
    EventType.TRADE_HELD: ("⏸", "Holding"),
    EventType.TRADE_BLOCKED: ("🚧", "Trade blocked"),
    EventType.ALERT_EMITTED: ("🔔", "Alert"),
    EventType.EMERGENCY_STOP_SET: ("🛑", "EMERGENCY STOP SET"),
    EventType.EMERGENCY_STOP_CLEARED: ("▶️", "Emergency stop cleared"),
    EventType.CIRCUIT_BREAKER_TRIPPED: ("⚡", "Circuit breaker TRIPPED"),
    EventType.CIRCUIT_BREAKER_RESET: ("🔌", "Circuit breaker reset"),
    EventType.SECURITY: ("🔒", "Security"),
    EventType.SETTINGS_CHANGED: ("⚙️", "Settings changed"),
    EventType.DAILY_SUMMARY: ("📊", "Daily report"),
    EventType.CRITICAL: ("🚨", "CRITICAL"),
}

# (data key, label, is a number); order is display order.
_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("side", "Side", False),
    ("role", "Role", False),
    ("action", "Action", False),
    ("amount", "Quantity", True),
    ("filled", "Filled", True),
    ("average_price", "Price", True),
    ("price", "Price", True),
    ("stop_price", "Stop", True),
    ("stop_loss", "Stop-loss", True),
    ("take_profit", "Take-profit", True),
    ("avg_entry_price", "Entry", True),
    ("realized_pnl", "PnL", True),
    ("pnl", "PnL", True),
    ("fee_cost", "Fee", True),
    ("fees_paid", "Fees", True),
    ("status", "Status", False),
    ("status_source", "Source", False),
    ("confidence", "Confidence", False),
    ("by", "By", False),
    ("reason", "Reason", False),
)


def _generic(event: Event) -> Card:
    icon, title = _HEAD.get(event.type, ("•", event.type.value))
    rows: list[tuple[str, str]] = []
    if event.symbol:
        rows.append(("Symbol", event.symbol))
    seen: set[str] = set()
    for key, label, numeric in _FIELDS:
        value = event.data.get(key)
        if value is None or value == "" or label in seen:
            continue
        seen.add(label)
        rows.append((label, fmt_num(value) if numeric else str(value)))
    if event.client_order_id:
        rows.append(("Order", event.client_order_id))
    if event.reasons:
        rows.append(("Reasons", ", ".join(event.reasons)))
    lines = (event.message,) if event.message else ()
    return Card(title=title, icon=icon, rows=tuple(rows), lines=lines)


def _daily_summary(event: Event) -> Card:
    data: dict[str, Any] = event.data
    rows = [
        ("Day", str(data.get("day", "?"))),
        ("Trades", str(data.get("trade_count", 0))),
        ("Realized PnL", f"{fmt_num(data.get('realized_pnl'))} {data.get('quote', '')}".strip()),
        ("Fees", f"{fmt_num(data.get('fees'))} {data.get('quote', '')}".strip()),
        ("Win rate", _win_rate(data)),
        ("Open positions", str(len(data.get("open_positions", [])))),
    ]
    lines = tuple(
        f"{p.get('symbol')}: {fmt_num(p.get('amount'))} @ {fmt_num(p.get('avg_entry_price'))}"
        + (f" (uPnL {fmt_num(p.get('unrealized_pnl'))})" if p.get("unrealized_pnl") else "")
        for p in data.get("open_positions", [])
    )
    return Card(title="Daily report", icon="📊", rows=tuple(rows), lines=lines)


def _win_rate(data: dict[str, Any]) -> str:
    closed = int(data.get("closed_count", 0) or 0)
    if closed == 0:
        return "- (no closed trades)"
    wins = int(data.get("win_count", 0) or 0)
    return f"{100 * wins // closed}% ({wins}/{closed})"


_SPECIAL: dict[EventType, Callable[[Event], Card]] = {EventType.DAILY_SUMMARY: _daily_summary}


def render_event(event: Event, *, possible_repeat: bool = False, held: bool = False) -> Card:
    """The Card for one event; notes say when it may repeat an earlier message or was held."""
    card = _SPECIAL.get(event.type, _generic)(event)
    created = event.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = [event.mode.value, f"#{event.seq}", created]
    if held:
        footer.append("held during quiet hours")
    if possible_repeat:
        footer.insert(0, "⚠️ possible repeat of an earlier message with the same #")
    return card.with_footer(*footer)
