"""The paper account rendered as ccxt's unified structures (order, trade, balance, ticker).

Floats only here, at the very edge, because that is what ccxt returns; the account itself
stays Decimal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kestrel.exchange.paper_state import PaperAccount, PaperOrder, PaperTrade


def iso8601(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp % 1000:03d}Z"


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def trade_dict(trade: PaperTrade) -> dict[str, Any]:
    fee = {
        "cost": float(trade.fee_cost),
        "currency": trade.fee_currency,
        "rate": float(trade.fee_rate),
    }
    return {
        "id": trade.id,
        "order": trade.order_id,
        "clientOrderId": trade.client_order_id,
        "timestamp": trade.timestamp,
        "datetime": iso8601(trade.timestamp),
        "symbol": trade.symbol,
        "type": trade.type,
        "side": trade.side,
        "takerOrMaker": trade.taker_or_maker,
        "price": float(trade.price),
        "amount": float(trade.amount),
        "cost": float(trade.cost),
        "fee": fee,
        "fees": [fee],
        "info": trade.model_dump(mode="json"),
    }


def order_dict(order: PaperOrder, trades: list[PaperTrade]) -> dict[str, Any]:
    average = order.cost / order.filled if order.filled else None
    # ccxt reports a market order's price as its average once it has filled
    price = order.price if order.price is not None else average
    # one entry per currency paid in (a buy pays in base, a sell in quote, either maybe BNB)
    fees = [{"cost": float(cost), "currency": cur} for cur, cost in sorted(order.fees.items())]
    fee = fees[0] if len(fees) == 1 else None
    return {
        "id": order.id,
        "clientOrderId": order.client_order_id,
        "timestamp": order.timestamp,
        "datetime": iso8601(order.timestamp),
        "lastTradeTimestamp": order.last_trade_timestamp,
        "lastUpdateTimestamp": order.last_update_timestamp,
        "symbol": order.symbol,
        "type": order.type,
        "timeInForce": "GTC",
        "postOnly": False,
        "reduceOnly": None,
        "side": order.side,
        "price": _f(price),
        "triggerPrice": _f(order.stop_price),
        "stopPrice": _f(order.stop_price),
        "amount": float(order.amount),
        "cost": float(order.cost),
        "average": _f(average),
        "filled": float(order.filled),
        "remaining": float(order.amount - order.filled),
        "status": order.status,
        "fee": fee,
        "fees": fees,
        "trades": [trade_dict(t) for t in trades],
        "info": order.model_dump(mode="json"),
    }


def balance_dict(account: PaperAccount, timestamp: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"info": {"balances": account.model_dump(mode="json")["balances"]}}
    out["timestamp"], out["datetime"] = timestamp, iso8601(timestamp)
    free: dict[str, float] = {}
    used: dict[str, float] = {}
    total: dict[str, float] = {}
    for currency in account.currencies():
        free[currency] = float(account.free(currency))
        used[currency] = float(account.used(currency))
        total[currency] = float(account.total(currency))
        out[currency] = {"free": free[currency], "used": used[currency], "total": total[currency]}
    out.update(free=free, used=used, total=total)
    return out


def since_limit[T](
    items: list[T], since: int | None, limit: int | None, stamp: Callable[[T], int]
) -> list[T]:
    """ccxt's convention: with `since`, the first `limit` from then; without, the last `limit`."""
    if since is not None:
        items = [i for i in items if stamp(i) >= since]
        return items[:limit] if limit else items
    return items[-limit:] if limit else items
