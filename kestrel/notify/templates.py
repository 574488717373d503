"""One message template per event type.

Events carry their facts in `data` (written by kestrel.execution.orders, kestrel.books.ledger,
...); a
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
    EventType.FEE_NOT_VALUED: ("⚠️", "Fee not valued"),
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


def money_map(amounts: object) -> str:
    """{'USDT': '12.5', 'BTC': '0.001'} -> '12.5 USDT, 0.001 BTC' (never summed across)."""
    if not isinstance(amounts, dict) or not amounts:
        return "0"
    return ", ".join(f"{fmt_num(v)} {k}" for k, v in sorted(amounts.items()))


def unvalued_fees_rows(amounts: object) -> list[tuple[str, str]]:
    """Fees with no rate to their quote (e.g. BNB) are not in "Fees": shown on their own
    row, as charged, so they are never silently zero; no row when there are none."""
    if not isinstance(amounts, dict) or not amounts:
        return []
    return [("Fees not valued", money_map(amounts))]


def _daily_summary(event: Event) -> Card:
    data: dict[str, Any] = event.data
    positions = data.get("open_positions") or []
    rows = [
        ("Day", f"{data.get('day', '?')} ({data.get('timezone', 'UTC')})"),
        (
            "Trades",
            f"{data.get('trade_count', 0)} ({data.get('buy_count', 0)} buys, "
            f"{data.get('sell_count', 0)} sells)",
        ),
        ("Realized PnL", money_map(data.get("realized_pnl"))),
        ("Fees", money_map(data.get("fees"))),
        *unvalued_fees_rows(data.get("fees_not_valued")),
        ("Win rate", win_rate_text(data.get("win_count", 0), data.get("closed_count", 0))),
        ("Open positions", str(len(positions))),
    ]
    lines = tuple(position_line(p) for p in positions)
    return Card(title="Daily report", icon="📊", rows=tuple(rows), lines=lines)


def position_line(p: dict[str, Any]) -> str:
    text = f"{p.get('symbol')}: {fmt_num(p.get('amount'))} @ {fmt_num(p.get('avg_entry_price'))}"
    if p.get("unrealized_pnl") is not None:
        text += f", last {fmt_num(p.get('last_price'))}, uPnL {fmt_num(p.get('unrealized_pnl'))}"
    if p.get("levels"):
        text += f"; {p['levels']}"
    return text


def win_rate_text(wins: object, closed: object) -> str:
    closed_n, wins_n = int(str(closed or 0)), int(str(wins or 0))
    if closed_n == 0:
        return "- (no closed positions)"
    return f"{100 * wins_n // closed_n}% ({wins_n}/{closed_n})"


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
