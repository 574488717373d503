"""Positions follow the fills. Each fill is recorded once (by trade id) and moves the
symbol's position: buys average in, sells realize PnL.

A position is a pure function of its fills: it lists the fills it applied (`Position.fills`,
by `Fill.key`, each with the PnL it realized) and a fill listed there is never applied again.
Recording a fill is three compare-and-set writes (the fill, the position, the day's PnL), one
transaction on SQLite and on a MongoDB replica set. A MongoDB without transactions (standalone
server, mongomock) keeps whichever writes succeeded; the retry then finds the fill stored and
applies it where it is still missing, so every retry converges on the same books.

Fees are kept as the exchange charged them, per currency (`Fill.fees`, `Position.fees`), and
counted once in the PnL:
- a buy fee taken in the base asset is not held (`amount` is what the wallet got) and is in
  the entry price (the quote paid per coin held), so it is not a fee again in `fees_paid`;
- every other fee is valued in quote at fill time (`fees_paid`, per currency `fee_values`):
  quote as is, base at the fill's price, a third currency (BNB) at the rate recorded on the
  fill (`Fill.fee_rates`, see `with_fee_rates`). A fee with no rate is kept in
  `fees_unvalued` and said so with a FEE_NOT_VALUED event: never silently zero.
So net PnL = realized PnL - fees_paid is what the wallet gained, and for every quote currency,
start balance + realized PnL - fees - cost of what is still held = cash (the summary's
reconciliation, `kestrel.reporting.summary.books_from_positions`).

A sell that leaves less than the market can trade (below its minimum amount, step or
notional; typically the slice of a buy fee taken in the base asset) closes the position and
keeps that remainder as `dust`, written off at cost in the realized PnL (it cannot be sold,
and the quote-currency books stay exact; the base-currency wallet keeps those coins).

Daily PnL, for the daily loss limit: every recorded fill also adds, exactly once, to the state
document `daily_pnl:<YYYY-MM-DD>` (UTC date of the fill's exchange timestamp, i.e. market time
in a replay; the wall clock when the exchange gave none):

    {"date": "2024-05-01", "mode": "REAL",
     "currencies": {"USDT": {"realized_pnl": "12.5", "fees": "0.75", "net": "11.75",
                             "unrealized_pnl": "-3.1"}},
     "fills": 7, "positions_closed": 2, "fill_keys": ["<Fill.key>", ...],
     "updated_at": "<ISO time>"}

Amounts are Decimal strings per quote currency. realized_pnl is gross (sells), fees are every
fill's valued fees in quote terms, net = realized_pnl - fees; a currency entry also has
`fees_not_valued` ({currency: cost}) when some fee had no rate. unrealized_pnl is the latest
mark-to-market of the positions open that day, written by the position monitor
(`record_unrealized`). A day's loss is -(net + unrealized_pnl) when that is positive.
`fill_keys` are the fills already counted (a retry never counts one twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kestrel.mode import current_mode
from kestrel.models import (
    Event,
    EventType,
    Fill,
    MarketSpec,
    Position,
    PositionStatus,
    Side,
    utcnow,
)
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, retry_on_conflict, update_state

DAILY_PNL_PREFIX = "daily_pnl:"


# What the ledger needs to know of a market: whether a remainder is dust (too small to sell).
Tradable = MarketSpec


def fee_values(fill: Fill) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The fill's fees that count as fees, valued in its quote currency per fee currency, and
    those that could not be valued (a third currency with no rate on the fill), at their cost.
    A buy's fee in the base asset is not among them: the coins it took are in the entry price
    (the quote paid per coin held), so counting it again would count it twice."""
    valued: dict[str, Decimal] = {}
    unvalued: dict[str, Decimal] = {}
    for currency, cost in fill.fees.items():
        if fill.side is Side.BUY and currency == fill.symbol.partition("/")[0]:
            continue
        rate = _quote_rate(fill, currency)
        if rate is None:
            unvalued[currency] = cost
        else:
            valued[currency] = cost * rate
    return valued, unvalued


def _quote_rate(fill: Fill, currency: str) -> Decimal | None:
    """Quote per unit of `currency` at the fill: 1 for the quote, the fill's price for the
    base, the rate recorded on the fill for a third currency (None if there is none)."""
    base, _, quote = fill.symbol.partition("/")
    if currency == quote:
        return Decimal("1")
    if currency == base:
        return fill.price
    return fill.fee_rates.get(currency)


def fee_in_quote(fill: Fill) -> Decimal:
    """What the fill's fees cost in quote (those that could be valued, see `fee_values`)."""
    return sum(fee_values(fill)[0].values(), Decimal("0"))


def base_fee(fill: Fill) -> Decimal:
    """The part of the fill's fees taken in the base asset (not held after a buy)."""
    return fill.fees.get(fill.symbol.partition("/")[0], Decimal("0"))


def base_received(fill: Fill) -> Decimal:
    """What a buy adds to the holding: exchanges that take the fee in base keep a slice."""
    return fill.amount - base_fee(fill) if fill.side is Side.BUY else fill.amount


def with_fee_rates(fill: Fill, rate: Callable[[str, str], Decimal | None]) -> Fill:
    """The fill with the rate of each fee in a third currency recorded on it: `rate(currency,
    quote)` gives the quote per unit at fill time (a ticker, or a rate the caller knows), or
    None when there is none; that fee then stays unvalued (and is said so when recorded)."""
    base, _, quote = fill.symbol.partition("/")
    rates = dict(fill.fee_rates)
    for currency in fill.fees:
        if currency not in (base, quote, *rates):
            found = rate(currency, quote)
            if found is not None and found > 0:
                rates[currency] = found
    return fill if rates == fill.fee_rates else fill.model_copy(update={"fee_rates": rates})


def total_fees(fills: Iterable[Fill]) -> dict[str, Decimal]:
    """The fills' fees per currency (an order's fees: never added across currencies)."""
    total: dict[str, Decimal] = {}
    for fill in fills:
        total = _plus(total, fill.fees)
    return total


def _plus(total: Mapping[str, Decimal], more: Mapping[str, Decimal]) -> dict[str, Decimal]:
    out = dict(total)
    for currency, amount in more.items():
        out[currency] = out.get(currency, Decimal("0")) + amount
    return out


def _fees_update(position: Position, fill: Fill) -> dict[str, Any]:
    """The position's fee fields with this fill's fees added, each counted once."""
    valued, unvalued = fee_values(fill)
    return {
        "fees": _plus(position.fees, fill.fees),
        "fee_values": _plus(position.fee_values, valued),
        "fees_unvalued": _plus(position.fees_unvalued, unvalued),
        "fees_paid": position.fees_paid + sum(valued.values(), Decimal("0")),
    }


def apply_fill(
    position: Position | None,
    fill: Fill,
    protect: tuple[Decimal | None, Decimal | None] = (None, None),
    tradable: Tradable | None = None,
) -> tuple[Position, list[EventType]]:
    """The position after `fill` (pure: the same fills in the same order give the same
    position), and the events it makes (opened / closed). A buy without a position opens one;
    a sell needs one (callers handle untracked sells). A fill already applied changes nothing."""
    if position is not None and fill.key in position.fills:
        return position, []
    now = utcnow()
    if fill.side is Side.BUY:
        if position is None:
            position = Position(
                position_id=f"{fill.symbol}:{fill.trade_id}",
                symbol=fill.symbol,
                opened_at=now,
                stop_loss=protect[0],
                take_profit=protect[1],
                high_water_mark=fill.price,
            )
            opened = [EventType.POSITION_OPENED]
        else:
            opened = []
        new_amount = position.amount + base_received(fill)
        # The cost is the quote paid for the coins held: a fee in base raises it per coin.
        cost = position.entry_cost + fill.amount * fill.price
        return (
            position.model_copy(
                update={
                    "amount": new_amount,
                    "entry_cost": cost,
                    "avg_entry_price": cost / new_amount
                    if new_amount > 0
                    else position.avg_entry_price,
                    **_fees_update(position, fill),
                    "fills": {**position.fills, fill.key: Decimal("0")},
                    "last_price": fill.price,
                    "updated_at": now,
                }
            ),
            opened,
        )
    assert position is not None, "callers handle sells without a position"
    # A sell fee taken in the base asset leaves the wallet with the coins sold.
    sold = min(fill.amount + base_fee(fill), position.amount)
    remaining = position.amount - sold
    # The cost of what is sold; the last sale takes all that is left, so a position's total
    # realized PnL is exactly its proceeds less its cost.
    cost_sold = (
        position.entry_cost if remaining == 0 else position.entry_cost * sold / position.amount
    )
    realized = fill.price * sold - cost_sold
    cost_left = position.entry_cost - cost_sold
    dust = Decimal("0")
    if remaining > 0 and tradable is not None and tradable.is_dust(remaining, fill.price):
        # Unsellable: written off at cost, so the quote books stay exact (the coins stay in
        # the wallet, recorded as `dust`).
        dust, remaining = remaining, Decimal("0")
        realized -= cost_left
        cost_left = Decimal("0")
    closed = remaining == 0
    return (
        position.model_copy(
            update={
                "amount": remaining,
                "entry_cost": cost_left,
                "dust": position.dust + dust,
                "realized_pnl": position.realized_pnl + realized,
                **_fees_update(position, fill),
                "fills": {**position.fills, fill.key: realized},
                "last_price": fill.price,
                "status": PositionStatus.CLOSED if closed else PositionStatus.OPEN,
                "closed_at": now if closed else None,
                "updated_at": now,
            }
        ),
        [EventType.POSITION_CLOSED] if closed else [],
    )


def record_fill(
    store: Store,
    fill: Fill,
    protect: tuple[Decimal | None, Decimal | None] = (None, None),
    tradable: Tradable | None = None,
) -> bool:
    """Store the fill and apply it to its position and its day, each exactly once. True if
    this call stored the fill, False if it was recorded before (it is still applied wherever
    an interrupted recording left it out).
    `protect` is the (stop-loss, take-profit) a position opened by this fill starts with;
    `tradable` the market's minimums, below which a sell's remainder is dust."""
    stored = False

    def attempt() -> bool:
        nonlocal stored
        with store.atomic():
            added = store.add_fill(fill)
            stored = stored or added
            realized, closed = _apply_to_position(store, fill, protect, tradable, new=added)
            _add_to_daily(store, fill, realized, closed=closed)
        return stored

    return retry_on_conflict(attempt, what=f"the position of fill {fill.trade_id}")


def _apply_to_position(
    store: Store,
    fill: Fill,
    protect: tuple[Decimal | None, Decimal | None],
    tradable: Tradable | None,
    *,
    new: bool,
) -> tuple[Decimal, bool]:
    """Apply the fill to the symbol's open position unless a position already has it; returns
    the PnL it realized and whether it closed its position."""
    if not new:  # stored before: an earlier attempt or another run may have applied it
        for position in store.list_positions(symbol=fill.symbol):
            if fill.key in position.fills:
                return position.fills[fill.key], _closed_by(position, fill)
    current = store.open_position(fill.symbol)
    if current is None and fill.side is Side.SELL:
        store.append_events([_untracked_sell(fill), *_unvalued_fee_events(fill)])
        return Decimal("0"), False
    updated, event_types = apply_fill(current, fill, protect, tradable)
    events = [_position_event(kind, updated, fill) for kind in event_types]
    store.save_position(
        updated,
        expected_version=current.version if current else 0,
        events=[*events, *_unvalued_fee_events(fill)],
    )
    return updated.fills[fill.key], EventType.POSITION_CLOSED in event_types


def _closed_by(position: Position, fill: Fill) -> bool:
    return position.status is PositionStatus.CLOSED and list(position.fills)[-1] == fill.key


def _position_event(kind: EventType, position: Position, fill: Fill) -> Event:
    return Event(
        event_id=f"{position.position_id}:{kind}",
        type=kind,
        mode=current_mode(),
        symbol=fill.symbol,
        client_order_id=fill.client_order_id,
        message=_position_message(kind, position),
        data={
            "amount": str(position.amount),
            "avg_entry_price": str(position.avg_entry_price),
            "realized_pnl": str(position.realized_pnl),
            "fees_paid": str(position.fees_paid),
        },
    )


def _unvalued_fee_events(fill: Fill) -> list[Event]:
    """A fee with no rate to the quote is not in the PnL: say so, once per fill."""
    unvalued = fee_values(fill)[1]
    if not unvalued:
        return []
    quote = fill.symbol.partition("/")[2]
    charged = ", ".join(f"{cost} {currency}" for currency, cost in unvalued.items())
    return [
        Event(
            event_id=f"fee_not_valued:{fill.key}",
            type=EventType.FEE_NOT_VALUED,
            mode=current_mode(),
            symbol=fill.symbol,
            client_order_id=fill.client_order_id,
            message=f"fill {fill.trade_id} of {fill.symbol}: fee {charged} has no rate to "
            f"{quote}; it is not in the PnL (kept in the position's fees_unvalued)",
            data={currency: str(cost) for currency, cost in unvalued.items()},
        )
    ]


def _position_message(kind: EventType, position: Position) -> str:
    if kind is EventType.POSITION_OPENED:
        return f"opened {position.symbol} {position.amount} @ {position.avg_entry_price}"
    return f"closed {position.symbol}: realized {position.realized_pnl}, fees {position.fees_paid}"


def _untracked_sell(fill: Fill) -> Event:
    """A sell of coins we never bought (held before Kestrel, or sold by hand): keep the fill,
    leave positions alone, and say so loudly."""
    return Event(
        event_id=f"untracked_sell:{fill.client_order_id}:{fill.trade_id}",
        type=EventType.CRITICAL,
        mode=current_mode(),
        symbol=fill.symbol,
        client_order_id=fill.client_order_id,
        message=f"sell fill {fill.trade_id} of {fill.amount} {fill.symbol} has no tracked position",
    )


def fill_day(fill: Fill) -> str:
    """The UTC day a fill belongs to, by the exchange's clock (market time in replays)."""
    moment = (
        datetime.fromtimestamp(fill.timestamp / 1000, tz=UTC) if fill.timestamp > 0 else utcnow()
    )
    return moment.date().isoformat()


def daily_pnl_key(day: str) -> str:
    return f"{DAILY_PNL_PREFIX}{day}"


def _currency_entry(doc: dict[str, Any], quote: str) -> dict[str, Any]:
    currencies: dict[str, dict[str, Any]] = doc.setdefault("currencies", {})
    return currencies.setdefault(
        quote, {"realized_pnl": "0", "fees": "0", "net": "0", "unrealized_pnl": "0"}
    )


def _add_to_daily(store: Store, fill: Fill, realized: Decimal, *, closed: bool) -> None:
    """Add one fill to its day's PnL document, unless the document already counts it."""
    day = fill_day(fill)
    key = daily_pnl_key(day)
    current = store.get_state(key)
    doc, version = (dict(current[0]), current[1]) if current else ({}, 0)
    counted = list(doc.get("fill_keys") or [])
    if fill.key in counted:
        return
    doc["fill_keys"] = [*counted, fill.key]
    doc.setdefault("date", day)
    doc["mode"] = current_mode().value
    quote = fill.symbol.partition("/")[2]
    entry = _currency_entry(doc, quote)
    entry["realized_pnl"] = str(Decimal(entry["realized_pnl"]) + realized)
    entry["fees"] = str(Decimal(entry["fees"]) + fee_in_quote(fill))
    entry["net"] = str(Decimal(entry["realized_pnl"]) - Decimal(entry["fees"]))
    unvalued = fee_values(fill)[1]
    if unvalued:
        before = {c: Decimal(v) for c, v in (entry.get("fees_not_valued") or {}).items()}
        entry["fees_not_valued"] = {c: str(v) for c, v in _plus(before, unvalued).items()}
    doc["fills"] = int(doc.get("fills", 0)) + 1
    doc["positions_closed"] = int(doc.get("positions_closed", 0)) + (1 if closed else 0)
    doc["updated_at"] = utcnow().isoformat()
    store.put_state(key, doc, expected_version=version)


def record_unrealized(store: Store, day: str, unrealized: Mapping[str, Decimal]) -> None:
    """The position monitor's latest mark-to-market, per quote currency, on `day`'s document."""
    key = daily_pnl_key(day)

    def change(current: dict[str, Any] | None) -> StateChange[None]:
        doc = dict(current or {})
        doc.setdefault("date", day)
        doc["mode"] = current_mode().value
        doc.setdefault("fills", 0)
        doc.setdefault("positions_closed", 0)
        for entry in (doc.get("currencies") or {}).values():
            entry["unrealized_pnl"] = "0"
        for quote, amount in unrealized.items():
            _currency_entry(doc, quote)["unrealized_pnl"] = str(amount)
        doc["updated_at"] = utcnow().isoformat()
        return StateChange(result=None, value=doc)

    update_state(store, key, change, what=f"the unrealized PnL on {key}")


def daily_pnl(store: Store, day: str) -> dict[str, Any] | None:
    """The day's PnL document (shape in the module docstring), or None if nothing happened."""
    found = store.get_state(daily_pnl_key(day))
    return found[0] if found else None
