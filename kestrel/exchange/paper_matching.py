"""When and at what price a paper order fills against a candle, and booking the fill.

The rules, chosen to be a little pessimistic rather than flattering:
- market: the open of the first candle that opens at/after the order, moved against us by
  the slippage; taker.
- limit: on the first candle, a limit already through the open is marketable and fills like
  a market order, but never worse than its limit (taker). Afterwards it rests in the book and
  fills at exactly its limit price when a candle trades through it (maker).
- stop_market: triggers when a candle trades through the stop and fills at the stop, moved
  against us by the slippage; if the candle OPENS beyond the stop (a gap) it fills at that
  open instead, because the stop price never traded (taker).
Adverse prices are rounded to the market's tick, away from us (buys up, sells down). Fills
are whole: there is no volume model, the paper book is infinitely deep. A fill is stamped with
the open time of the candle it happened in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from kestrel.exchange.paper_state import PaperAccount, PaperOrder, PaperTrade
from kestrel.market.base import MarketFeed
from kestrel.models import Candle, MarketSpec
from kestrel.money import to_decimal
from kestrel.settings import PaperSettings

BPS = Decimal("10000")


@dataclass(frozen=True)
class Execution:
    price: Decimal
    taker_or_maker: Literal["taker", "maker"]


def adverse(price: Decimal, side: str, slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """`price` moved against the trader by the slippage, on the tick grid, rounded away."""
    factor = slippage_bps / BPS
    if side == "buy":
        moved, rounding = price * (1 + factor), ROUND_CEILING
    else:
        moved, rounding = price * (1 - factor), ROUND_FLOOR
    return (moved / tick).to_integral_value(rounding=rounding) * tick


def match(
    order: PaperOrder, candle: Candle, spec: MarketSpec, slippage_bps: Decimal
) -> Execution | None:
    """The execution `order` gets in `candle`, or None if it does not fill there."""
    open_, high, low = to_decimal(candle.open), to_decimal(candle.high), to_decimal(candle.low)
    buy = order.side == "buy"
    first = order.candles_seen == 0

    def slipped(price: Decimal) -> Decimal:
        return adverse(price, order.side, slippage_bps, spec.price_tick)

    if order.type == "market":
        return Execution(slipped(open_), "taker")

    if order.type == "limit":
        assert order.price is not None
        limit = order.price
        if first and ((open_ <= limit) if buy else (open_ >= limit)):
            price = min(slipped(open_), limit) if buy else max(slipped(open_), limit)
            return Execution(price, "taker")
        if (low <= limit) if buy else (high >= limit):
            return Execution(limit, "maker")
        return None

    assert order.stop_price is not None
    stop = order.stop_price
    if (open_ >= stop) if buy else (open_ <= stop):
        return Execution(slipped(open_), "taker")
    if (high >= stop) if buy else (low <= stop):
        return Execution(slipped(stop), "taker")
    return None


def match_open_orders(
    account: PaperAccount,
    feed: MarketFeed,
    specs: Mapping[str, MarketSpec],
    settings: PaperSettings,
) -> bool:
    """Walk every open order through the candles closed since it was last looked at, oldest
    candle first and, within a candle, oldest order first. True if the account changed."""
    by_symbol: dict[str, list[PaperOrder]] = {}
    for order in account.open_orders():
        by_symbol.setdefault(order.symbol, []).append(order)
    changed = False
    for symbol, orders in sorted(by_symbol.items()):
        spec = specs.get(symbol)
        if spec is None:
            continue  # market no longer configured: leave its orders alone
        start = min(o.watch_from for o in orders)
        for candle in feed.candles_between(symbol, start, feed.now_ms(symbol)):
            for order in orders:
                if not order.is_open or candle.timestamp < order.watch_from:
                    continue
                execution = match(order, candle, spec, settings.slippage_bps)
                order.candles_seen += 1
                order.watch_from = candle.timestamp + 1
                changed = True
                if execution is not None:
                    book_fill(account, order, spec, settings, execution, candle.timestamp)
    return changed


def book_fill(
    account: PaperAccount,
    order: PaperOrder,
    spec: MarketSpec,
    settings: PaperSettings,
    execution: Execution,
    timestamp: int,
) -> None:
    """Book one whole fill: trade, balances and order change together. Fees in the quote."""
    rate = settings.taker_fee if execution.taker_or_maker == "taker" else settings.maker_fee
    amount = order.amount - order.filled
    cost = amount * execution.price
    fee = cost * rate
    if order.side == "buy":
        available = account.free(spec.quote, excluding=order.id)
        if cost + fee > available:
            order.status = "canceled"
            order.reason = (
                f"insufficient {spec.quote} when the order filled: it needed {cost + fee}, "
                f"{available} was free"
            )
            order.last_update_timestamp = timestamp
            return
        account.add(spec.quote, -(cost + fee))
        account.add(spec.base, amount)
    else:
        account.add(spec.base, -amount)
        account.add(spec.quote, cost - fee)
    trade = PaperTrade(
        id=str(account.next_trade_id),
        order_id=order.id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        type=order.type,
        side=order.side,
        taker_or_maker=execution.taker_or_maker,
        price=execution.price,
        amount=amount,
        cost=cost,
        fee_cost=fee,
        fee_currency=spec.quote,
        fee_rate=rate,
        timestamp=timestamp,
    )
    account.next_trade_id += 1
    account.trades.append(trade)
    order.filled += amount
    order.cost += cost
    order.fee_cost += fee
    order.trade_ids = [*order.trade_ids, trade.id]
    order.last_trade_timestamp = order.last_update_timestamp = timestamp
    order.status = "closed"
