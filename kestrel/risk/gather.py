"""Gathering a RiskContext from the runtime: the wallet, the store's orders, fills and
positions, the kill switch, the circuit breaker (refreshed here), today's PnL, exposure.

Read-only towards the order lifecycle's records (orders, fills, positions belong to
kestrel.execution.orders / kestrel.books.ledger); it writes only its own state documents (circuit
breaker,
daily snapshot). Two clocks: market time (`rt.now_ms`, the replay clock in DEMO replays) for
everything measured in candles - staleness, cooldowns - and the wall clock for the UTC day
and the breaker's cool-off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from kestrel.models import (
    AnalysisResult,
    Order,
    OrderRole,
    Position,
    PositionStatus,
    Side,
    timeframe_ms,
    utcnow,
)
from kestrel.money import to_decimal
from kestrel.risk.breaker import refresh_circuit_breaker
from kestrel.risk.context import Exposure, RiskContext
from kestrel.risk.controls import emergency_stop_state
from kestrel.risk.daily import daily_pnl, ensure_day_start, start_of_day
from kestrel.risk.portfolio import PriceBook, equity_usd, exposure_usd
from kestrel.runtime import Runtime
from kestrel.strategy.resolve import SymbolPlan

PROTECTIVE = frozenset({OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT})
_BALANCE_META = frozenset({"info", "free", "used", "total", "timestamp", "datetime"})


def balances(raw: dict[str, Any]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(free, total) per currency from a ccxt balance."""
    free: dict[str, Decimal] = {}
    total: dict[str, Decimal] = {}
    for currency, entry in raw.items():
        if currency in _BALANCE_META or not isinstance(entry, dict):
            continue
        free[currency] = to_decimal(entry.get("free") or 0)
        total[currency] = to_decimal(entry.get("total") or 0)
    return free, total


def gather_context(
    rt: Runtime, plan: SymbolPlan, analysis: AnalysisResult, *, now: datetime | None = None
) -> RiskContext:
    item = plan.item
    symbol = item.symbol
    store = rt.store
    trading = rt.settings.trading
    now = now or utcnow()
    market = rt.market(symbol)
    free, total = balances(rt.exchange.fetch_balance())
    live = list(store.iter_live_orders())
    own_live = [o for o in live if o.symbol == symbol]
    positions = store.list_positions(status=PositionStatus.OPEN)
    position = next((p for p in positions if p.symbol == symbol), None)
    held = {p.symbol for p in positions}
    pending_entries = {
        o.symbol
        for o in live
        if o.role is OrderRole.PRIMARY and o.side is Side.BUY and o.symbol not in held
    }
    book = PriceBook(rt.exchange, positions, known={symbol: analysis.price})
    stop = emergency_stop_state(store)
    # An exit first cancels the position's protective orders (kestrel.execution.orders), so the
    # coins
    # they hold reserved count as available to it - never more than the wallet holds.
    protected = sum(
        (o.remaining for o in own_live if o.side is Side.SELL and o.role in PROTECTIVE),
        Decimal("0"),
    )
    base_free = free.get(market.base, Decimal("0"))
    base_total = total.get(market.base, Decimal("0"))
    protected = max(Decimal("0"), min(protected, base_total - base_free))
    valuation = equity_usd(total, book.usd)
    exposure = exposure_usd(positions, live, book)
    quote_to_usd = book.usd(market.quote)
    in_quote = (
        _in_quote(total, positions, live, book, symbol, market.quote)
        if quote_to_usd is None
        else None
    )
    last_fill_ms: dict[str, int] = {}
    for fill in store.list_fills(symbol=symbol):
        side = fill.side.value
        last_fill_ms[side] = max(last_fill_ms.get(side, fill.timestamp), fill.timestamp)
    marked = [(p, book.symbol_price(p.symbol)) for p in positions]
    day_start = ensure_day_start(
        store,
        now,
        lambda: valuation.known,
        marked,
        fallback=(market.quote, lambda: equity_usd(total, _rate_to(book, market.quote)).known),
    )
    midnight = start_of_day(now)
    closed_today = [
        (p, None)
        for p in store.list_positions(status=PositionStatus.CLOSED)
        if p.closed_at is not None and p.closed_at >= midnight
    ]
    return RiskContext(
        item=item,
        analysis=analysis,
        market=market,
        settings=rt.settings.risk,
        trading=trading,
        profile=plan.profile,
        mode=rt.mode,
        now_ms=rt.now_ms(symbol),
        timeframe_ms=timeframe_ms(item.timeframe),
        open_orders_for_symbol=len(own_live),
        # An exit intent never sent does not block a new one: the new exit supersedes it.
        pending_exit=any(o.role is OrderRole.EXIT and o.may_be_on_exchange for o in own_live),
        open_positions=len(positions) + len(pending_entries),
        position=position,
        quote_free=free.get(market.quote, Decimal("0")),
        base_free=base_free,
        protected_base=protected,
        quote_to_usd=quote_to_usd,
        stake_to_quote=book.rate(item.stake()[1], market.quote),
        equity_quote=in_quote[0] if in_quote else None,
        exposure_quote=in_quote[1] if in_quote else Exposure(),
        emergency_stop=stop.active,
        emergency_stop_note=f"set by {stop.set_by}: {stop.reason}" if stop.active else "",
        circuit_breaker=refresh_circuit_breaker(store, trading.gates, now),
        last_fill_ms=last_fill_ms,
        daily=daily_pnl(
            day_start,
            [*marked, *closed_today],
            book.usd if day_start.currency == "USD" else _rate_to(book, day_start.currency),
            now,
        ),
        equity_usd=valuation.equity_usd,
        exposure=Exposure(
            symbol_usd=exposure.get(symbol, Decimal("0")),
            total_usd=sum(exposure.values(), Decimal("0")),
        ),
    )


def _rate_to(book: PriceBook, currency: str) -> Callable[[str], Decimal | None]:
    """A currency's value in `currency` at the book's prices (None: no path)."""

    def rate(source: str) -> Decimal | None:
        return book.rate(source, currency)

    return rate


def _in_quote(
    total: dict[str, Decimal],
    positions: list[Position],
    live: list[Order],
    book: PriceBook,
    symbol: str,
    quote: str,
) -> tuple[Decimal, Exposure]:
    """Equity and exposure (Exposure's fields then hold quote, not USD) valued in `quote`,
    for a pair whose quote has no USD price: the % caps are then measured in the quote
    itself. Balances with no path to the quote are left out, which can only tighten them."""

    def in_quote(currency: str) -> Decimal | None:
        return book.rate(currency, quote)

    exposure = exposure_usd(positions, live, book, value_in=in_quote)
    equity = equity_usd(total, in_quote).equity_usd
    return equity, Exposure(
        symbol_usd=exposure.get(symbol, Decimal("0")),
        total_usd=sum(exposure.values(), Decimal("0")),
    )
