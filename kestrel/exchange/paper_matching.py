"""Walking open paper orders through the candles that closed since, and booking their fills.

The rules themselves (when, how much, at what price, what fee) are FillRules
(kestrel.exchange.paper_rules, explained in docs/paper-exchange.md); this module applies them
to the account: candles oldest first, and within a candle oldest order first, all sharing the
candle's participation room. A fill is stamped with the open time of its candle.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from kestrel.exchange.paper_rules import BNB, Bar, Execution, FillRules, OrderTerms
from kestrel.exchange.paper_state import PaperAccount, PaperOrder, PaperTrade
from kestrel.market.base import MarketFeed
from kestrel.models import MarketSpec


def terms(order: PaperOrder) -> OrderTerms:
    return OrderTerms(
        kind=order.type,
        side=order.side,
        remaining=order.remaining,
        limit=order.price,
        stop=order.stop_price,
        triggered=order.triggered,
        fresh=order.candles_seen == 0,
        taking=order.taking,
    )


def match_open_orders(
    account: PaperAccount,
    feed: MarketFeed,
    specs: Mapping[str, MarketSpec],
    rules: FillRules,
) -> bool:
    """Match every open order against the candles closed since it was last looked at.
    True if the account changed."""
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
            bar = Bar.of(candle)
            room = rules.participation.room(bar)
            for order in orders:
                if not order.is_open or candle.timestamp < order.watch_from:
                    continue
                execution = rules.execute(
                    terms(order), bar, spec.price_tick, spec.amount_step, room
                )
                order.candles_seen += 1
                order.watch_from = candle.timestamp + 1
                changed = True
                order.taking = execution is not None and execution.taking
                if execution is None:
                    continue
                if execution.triggered:
                    order.triggered = True
                if execution.amount > 0:
                    book_fill(account, order, spec, rules, execution, candle.timestamp)
                    if room is not None:
                        room -= execution.amount
    return changed


def book_fill(
    account: PaperAccount,
    order: PaperOrder,
    spec: MarketSpec,
    rules: FillRules,
    execution: Execution,
    timestamp: int,
) -> None:
    """Book one fill: trade row, balances and order change together."""
    amount, price = execution.amount, execution.price
    cost = amount * price
    fee = rules.fees.charge(
        order.side,
        amount,
        price,
        execution.liquidity,
        spec.base,
        spec.quote,
        bnb_free=account.free(BNB, excluding=order.id),
    )
    if order.side == "buy":
        available = account.free(spec.quote, excluding=order.id)
        if cost > available:
            _cancel(
                account,
                order,
                timestamp,
                f"insufficient {spec.quote} when the order filled: {amount} at {price} "
                f"needed {cost}, {available} was free",
            )
            return
        account.add(spec.quote, -cost)
        account.add(spec.base, amount)
    else:
        account.add(spec.base, -amount)
        account.add(spec.quote, cost)
    account.add(fee.currency, -fee.cost)
    trade = PaperTrade(
        id=str(account.next_trade_id),
        order_id=order.id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        type=order.type,
        side=order.side,
        taker_or_maker=execution.liquidity,
        price=price,
        amount=amount,
        cost=cost,
        fee_cost=fee.cost,
        fee_currency=fee.currency,
        fee_rate=fee.rate,
        bnb_price=fee.bnb_price,
        timestamp=timestamp,
    )
    account.next_trade_id += 1
    account.record_trade(trade)
    order.filled += amount
    order.cost += cost
    order.fees = {**order.fees, fee.currency: order.fees.get(fee.currency, Decimal(0)) + fee.cost}
    order.trade_ids = [*order.trade_ids, trade.id]
    order.last_trade_timestamp = order.last_update_timestamp = timestamp
    if order.remaining <= 0:
        order.status = "closed"
        account.retire(order)


def _cancel(account: PaperAccount, order: PaperOrder, timestamp: int, reason: str) -> None:
    order.status = "canceled"
    order.reason = reason
    order.last_update_timestamp = timestamp
    account.retire(order)
