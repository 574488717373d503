"""ccxt's unified order and trade dicts -> our Order updates and Fills.

Exchange payloads are untrusted input: a malformed one raises InvalidExchangePayload naming
the field, and never turns into a status change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kestrel.errors import InvalidExchangePayload
from kestrel.models import Fill, Order, OrderStatus, StatusSource, utcnow
from kestrel.money import to_decimal

_CCXT_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


def _dec(payload: dict[str, Any], field: str, default: Decimal | None = None) -> Decimal | None:
    value = payload.get(field)
    if value is None:
        return default
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise InvalidExchangePayload(f"exchange sent {field}={value!r}: {exc}") from None


def remote_status(remote: dict[str, Any]) -> OrderStatus:
    raw = remote.get("status")
    if raw not in _CCXT_STATUS:
        raise InvalidExchangePayload(f"exchange sent an unknown order status {raw!r}")
    status = _CCXT_STATUS[raw]
    filled = _dec(remote, "filled", Decimal("0")) or Decimal("0")
    if status is OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def apply_remote(order: Order, remote: dict[str, Any], source: StatusSource) -> Order:
    """The order as the exchange reports it. Fees come from the fills (see ledger), since
    not every exchange reports them on the order."""
    status = remote_status(remote)
    filled = _dec(remote, "filled", order.filled) or Decimal("0")
    if filled < 0 or filled > order.amount * Decimal("1.000001"):
        raise InvalidExchangePayload(
            f"exchange reports filled={filled} for an order of {order.amount}"
        )
    average = _dec(remote, "average", order.average_price)
    exchange_id = remote.get("id")
    return order.model_copy(
        update={
            "exchange_order_id": str(exchange_id) if exchange_id else order.exchange_order_id,
            "status": status,
            "status_source": source,
            "filled": filled,
            "average_price": average if filled > 0 else order.average_price,
            "updated_at": utcnow(),
        }
    )


def fill_from_trade(order: Order, trade: dict[str, Any]) -> Fill:
    trade_id = trade.get("id")
    if not trade_id:
        raise InvalidExchangePayload(f"trade without id for order {order.client_order_id}")
    amount = _dec(trade, "amount")
    price = _dec(trade, "price")
    if amount is None or price is None or amount <= 0 or price <= 0:
        raise InvalidExchangePayload(
            f"trade {trade_id}: amount={trade.get('amount')!r} price={trade.get('price')!r}"
        )
    quote = order.symbol.partition("/")[2]
    fees = trade_fees(trade, quote)
    fee_currency, fee_cost = next(iter(fees.items()), (quote, Decimal("0")))
    timestamp = trade.get("timestamp")
    return Fill(
        trade_id=str(trade_id),
        client_order_id=order.client_order_id,
        exchange_order_id=order.exchange_order_id or (str(trade.get("order") or "") or None),
        symbol=order.symbol,
        side=order.side,
        amount=amount,
        price=price,
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        fees=fees,
        taker_or_maker=str(trade.get("takerOrMaker") or "taker"),
        timestamp=int(timestamp) if timestamp is not None else 0,
    )


def trade_fees(trade: dict[str, Any], quote: str) -> dict[str, Decimal]:
    """A ccxt trade's fees per currency: its `fees` list when it has one (ccxt's complete
    list, e.g. a fee in BNB plus one in quote), else its single `fee`; zero fees omitted, a fee
    without a currency taken as quote (as before)."""
    charged: dict[str, Decimal] = {}
    for fee in trade.get("fees") or [trade.get("fee") or {}]:
        cost = _dec(fee or {}, "cost", Decimal("0")) or Decimal("0")
        if cost != 0:
            currency = str(fee.get("currency") or quote)
            charged[currency] = charged.get(currency, Decimal("0")) + cost
    return charged


def trades_of(order: Order, trades: list[dict[str, Any]]) -> list[Fill]:
    """The trades that belong to `order` (by exchange order id), as Fills."""
    mine = [t for t in trades if str(t.get("order")) == str(order.exchange_order_id)]
    return [fill_from_trade(order, trade) for trade in mine]
