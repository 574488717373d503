"""What the bot's commands do, as plain functions of a Store (testable without Telegram).

Each returns a Card; the bot only renders it. Authorisation happens before these run (see
kestrel.notify.bot), and a refused attempt is recorded here as a SECURITY event, so the audit
trail and the owner's notification come from the same outbox as everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from kestrel.errors import CommandError
from kestrel.exchange.paper_state import STATE_KEY as PAPER_ACCOUNT_KEY
from kestrel.exchange.paper_state import PaperAccount
from kestrel.mode import trading_mode
from kestrel.models import Event, EventType, utcnow
from kestrel.notify.outbox import notify_cursor
from kestrel.notify.render import Card, fmt_num
from kestrel.notify.report import open_position_lines, period_stats
from kestrel.notify.templates import (
    money_map,
    position_line,
    unvalued_fees_rows,
    win_rate_text,
)
from kestrel.risk.controls import EmergencyStop, emergency_stop_state, set_emergency_stop
from kestrel.store.base import Store

CIRCUIT_BREAKER_KEY = "circuit_breaker"
UTC_ZONE = ZoneInfo("UTC")
MAX_LISTED = 20


@dataclass(frozen=True)
class Caller:
    """Who sent a command: the chat it came from and a printable user name."""

    chat_id: int
    user: str

    @property
    def tag(self) -> str:
        return f"telegram:{self.chat_id}:{self.user}"


@dataclass(frozen=True)
class CommandContext:
    store: Store
    caller: Caller
    zone: ZoneInfo = UTC_ZONE
    balances: Callable[[], Mapping[str, Decimal]] | None = None  # e.g. from fetch_balance
    now: Callable[[], datetime] = utcnow


def help_card(ctx: CommandContext, args: list[str]) -> Card:
    rows = tuple((f"/{name}", spec.description) for name, spec in COMMANDS.items())
    return Card(title="Kestrel commands", icon="🦅", rows=rows)


def status_card(ctx: CommandContext, args: list[str]) -> Card:
    store = ctx.store
    cursor = notify_cursor(store)
    backlog = len(store.list_events(after_seq=cursor, limit=1000))
    rows = (
        ("Mode", store.mode.value),
        ("Emergency stop", _stop_text(emergency_stop_state(store))),
        ("Circuit breaker", _breaker_text(store)),
        ("Open positions", str(len(open_position_lines(store)))),
        ("Live orders", str(len(list(store.iter_live_orders())))),
        ("Notifications", f"delivered up to #{cursor}, {backlog} after it"),
    )
    return Card(title="Status", icon="🦅", rows=rows)


def _hm(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _stop_text(stop: EmergencyStop) -> str:
    if not stop.active:
        return "off"
    since = f" since {_hm(stop.changed_at)}" if stop.changed_at else ""
    return f"ACTIVE{since} by {stop.set_by or '?'}: {stop.reason or '-'}"


def _breaker_text(store: Store) -> str:
    found = store.get_state(CIRCUIT_BREAKER_KEY)
    if found is None:
        return "ok"
    doc = found[0]
    if doc.get("tripped") or doc.get("active"):
        return f"TRIPPED: {doc.get('reason', '-')}"
    return "ok"


def positions_card(ctx: CommandContext, args: list[str]) -> Card:
    lines = open_position_lines(ctx.store)
    body = tuple(position_line(p.model_dump(mode="json")) for p in lines[:MAX_LISTED])
    return Card(
        title=f"Open positions ({len(lines)})", icon="📈", lines=body or ("No open positions.",)
    )


def orders_card(ctx: CommandContext, args: list[str]) -> Card:
    orders = list(ctx.store.iter_live_orders())
    body = tuple(
        f"{o.symbol} {o.side.value} {fmt_num(o.amount)} {o.type.value}"
        + (f" @ {fmt_num(o.price)}" if o.price else "")
        + (f" stop {fmt_num(o.stop_price)}" if o.stop_price else "")
        + f" [{o.role.value}, {o.status.value}, filled {fmt_num(o.filled)}] {o.client_order_id}"
        for o in orders[:MAX_LISTED]
    )
    return Card(title=f"Live orders ({len(orders)})", icon="📋", lines=body or ("No live orders.",))


def balance_card(ctx: CommandContext, args: list[str]) -> Card:
    if ctx.balances is not None:
        balances = dict(ctx.balances())
        source = "exchange"
    else:
        found = ctx.store.get_state(PAPER_ACCOUNT_KEY)
        if found is None:
            return Card(title="Balance", icon="💰", lines=("No balance known yet.",))
        balances = dict(PaperAccount.load(found[0]).balances)
        source = "paper account"
    rows = tuple((cur, fmt_num(amount)) for cur, amount in sorted(balances.items()) if amount)
    return Card(title=f"Balance ({source})", icon="💰", rows=rows or (("-", "0"),))


def pnl_card(ctx: CommandContext, args: list[str]) -> Card:
    period = (args[0] if args else "day").lower()
    days = {"day": 1, "today": 1, "week": 7}.get(period)
    if days is None:
        raise CommandError("usage: /pnl [day|week]")
    now = ctx.now().astimezone(ctx.zone)
    start_local = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    stats = period_stats(ctx.store, start_local, now + timedelta(microseconds=1))
    unrealized: dict[str, Decimal] = {}
    for line in open_position_lines(ctx.store):
        if line.unrealized_pnl is not None:
            quote = line.symbol.partition("/")[2]
            unrealized[quote] = unrealized.get(quote, Decimal("0")) + line.unrealized_pnl
    rows = (
        ("Since", f"{start_local:%Y-%m-%d %H:%M} {ctx.zone.key}"),
        ("Trades", str(stats.trade_count)),
        ("Realized PnL", money_map(stats.realized_pnl)),
        ("Fees", money_map(stats.fees)),
        *unvalued_fees_rows(stats.fees_not_valued),
        ("Win rate", win_rate_text(stats.win_count, stats.closed_count)),
        ("Unrealized PnL", money_map(unrealized)),
    )
    title = "PnL today" if days == 1 else "PnL last 7 days"
    return Card(title=title, icon="💹", rows=rows)


def stop_card(ctx: CommandContext, args: list[str]) -> Card:
    reason = " ".join(args) or "/stop from Telegram"
    with trading_mode(ctx.store.mode):
        state = set_emergency_stop(ctx.store, active=True, reason=reason, by=ctx.caller.tag)
    return Card(
        title="Emergency stop is ON",
        icon="🛑",
        rows=(("Mode", ctx.store.mode.value), ("By", state.set_by), ("Reason", state.reason)),
        lines=("No new trades until /resume.",),
    )


def resume_card(ctx: CommandContext, args: list[str]) -> Card:
    with trading_mode(ctx.store.mode):
        set_emergency_stop(
            ctx.store, active=False, reason=" ".join(args) or "/resume", by=ctx.caller.tag
        )
    return Card(
        title="Emergency stop is OFF",
        icon="▶️",
        rows=(("Mode", ctx.store.mode.value),),
        lines=("Trading resumes at the next cycle.",),
    )


def mode_card(ctx: CommandContext, args: list[str]) -> Card:
    mode = ctx.store.mode.value
    note = "real money" if mode == "REAL" else "paper trading, no real money"
    return Card(title=f"Mode: {mode}", icon="🧭", lines=(note,))


@dataclass(frozen=True)
class CommandSpec:
    description: str
    run: Callable[[CommandContext, list[str]], Card]


COMMANDS: dict[str, CommandSpec] = {
    "status": CommandSpec("Mode, emergency stop, breaker, positions, orders", status_card),
    "positions": CommandSpec("Open positions", positions_card),
    "orders": CommandSpec("Live orders", orders_card),
    "balance": CommandSpec("Balances", balance_card),
    "pnl": CommandSpec("PnL: /pnl day or /pnl week", pnl_card),
    "stop": CommandSpec("Emergency stop: block all new trades", stop_card),
    "resume": CommandSpec("Clear the emergency stop", resume_card),
    "mode": CommandSpec("Trading mode (DEMO or REAL)", mode_card),
    "help": CommandSpec("This list", help_card),
}


def run_command(ctx: CommandContext, name: str, args: list[str]) -> Card:
    """Run one command; unknown names and bad arguments become a helpful reply."""
    spec = COMMANDS.get(name.lower())
    if spec is None:
        return Card(title=f"Unknown command /{name}", icon="❓", lines=("Try /help.",))
    try:
        return spec.run(ctx, args)
    except CommandError as exc:
        return Card(title=str(exc), icon="❓")


def refusal_card() -> Card:
    return Card(title="Not authorised", icon="⛔", lines=("This chat may not command this bot.",))


def record_refusal(store: Store, caller: Caller, text: str, update_id: int) -> Event:
    """A SECURITY event for a command from a chat that is not allowed. The id comes from the
    Telegram update, so a re-delivered update is recorded once."""
    event = Event(
        event_id=f"security:telegram:{update_id}",
        type=EventType.SECURITY,
        mode=store.mode,
        message=f"refused Telegram message from unauthorised chat {caller.chat_id}",
        reasons=["UNAUTHORIZED_CHAT"],
        data={"chat_id": caller.chat_id, "user": caller.user, "text": text[:200]},
    )
    (stored,) = store.append_events([event])
    return stored
