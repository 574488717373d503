"""Checking an order request before the paper exchange accepts it, as Binance's filters do.

Amounts round DOWN to the market's precision, limits never to a worse price, stops toward the
market (MarketSpec, through ccxt's precision code); what is then below the minimum amount or
minimum notional (MarketSpec.size_problem) is refused with a message naming the minimum.
Nothing here touches the account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kestrel.exchange.paper_errors import PaperOrderRejected
from kestrel.exchange.paper_rules import FillRules, on_tick
from kestrel.exchange.paper_state import PaperSide, PaperType
from kestrel.models import MarketSpec
from kestrel.money import to_decimal

MAX_CLIENT_ID = 36  # Binance's limit for newClientOrderId


@dataclass(frozen=True)
class OrderRequest:
    """A validated request: rounded numbers, the client id, and what it must reserve."""

    symbol: str
    kind: PaperType
    side: PaperSide
    amount: Decimal
    limit: Decimal | None
    stop: Decimal | None
    client_order_id: str
    reserve_currency: str
    reserve_price: Decimal  # held back per unit: quote per base for buys, 1 for sells


def new_client_order_id() -> str:
    return "paper-" + uuid.uuid4().hex[:24]


def parse_side(side: str) -> PaperSide:
    value = side.lower()
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise PaperOrderRejected(f"side must be 'buy' or 'sell', got {side!r}")


def parse_kind(type: str, params: dict[str, Any]) -> tuple[PaperType, Decimal | None]:
    """(kind, stop price), read as ccxt's Binance reads them: "market" or "limit" with params
    stopLossPrice (or stopPrice / triggerPrice) is a stop-loss (STOP_LOSS / STOP_LOSS_LIMIT);
    the types "stop_market" / "stop_loss" and "stop_loss_limit" say so by name."""
    value = type.lower()
    if params.get("takeProfitPrice") is not None:
        raise PaperOrderRejected(
            "take-profit orders are not supported by the paper exchange (the position "
            "monitor watches take-profits)"
        )
    raw_stop = params.get("stopLossPrice", params.get("stopPrice", params.get("triggerPrice")))
    stop = to_decimal(raw_stop) if raw_stop is not None else None
    if value in ("stop_market", "stop_loss", "stop", "stop_loss_limit"):
        if stop is None:
            raise PaperOrderRejected(f"a {value} order needs params stopPrice (or triggerPrice)")
        return ("stop_loss_limit" if value == "stop_loss_limit" else "stop_market"), stop
    if value == "market":
        return ("stop_market", stop) if stop is not None else ("market", None)
    if value == "limit":
        return ("stop_loss_limit", stop) if stop is not None else ("limit", None)
    raise PaperOrderRejected(
        f"order type {type!r} is not supported; use market, limit, stop_market or stop_loss_limit"
    )


def validate_request(
    spec: MarketSpec,
    rules: FillRules,
    *,
    type: str,
    side: str,
    amount: float | Decimal | str,
    price: float | Decimal | str | None,
    params: dict[str, Any],
    last: Decimal,
) -> OrderRequest:
    """The request as the paper exchange will book it, or PaperOrderRejected saying why not.

    `last` is the latest close: the reference price of market orders and the stop check.
    """
    symbol = spec.symbol
    kind, stop = parse_kind(type, params)
    side_ = parse_side(side)
    qty = spec.amount_to_precision(to_decimal(amount))
    limit = None
    if kind in ("limit", "stop_loss_limit"):
        if price is None or to_decimal(price) <= 0:
            raise PaperOrderRejected(f"{symbol}: a {kind} order needs a price > 0")
        limit = spec.limit_price(side_, to_decimal(price))
    if stop is not None:
        stop = spec.stop_price(side_, stop) if stop > 0 else stop
        if stop <= 0:
            raise PaperOrderRejected(f"{symbol}: stopPrice must be > 0")
    reference = limit or stop or last
    too_small = spec.size_problem(qty, reference)
    if too_small is not None:
        raise PaperOrderRejected(too_small.detail)
    if stop is not None and ((last >= stop) if side_ == "buy" else (last <= stop)):
        raise PaperOrderRejected(
            f"{symbol}: Order would immediately trigger (last {last}, stop {stop})"
        )
    client_id = str(
        params.get("clientOrderId") or params.get("newClientOrderId") or new_client_order_id()
    )
    if len(client_id) > MAX_CLIENT_ID:
        raise PaperOrderRejected(f"clientOrderId longer than {MAX_CLIENT_ID} characters")
    currency, reserve_price = reservation(spec, rules, side_, limit, stop or last)
    return OrderRequest(symbol, kind, side_, qty, limit, stop, client_id, currency, reserve_price)


def reservation(
    spec: MarketSpec, rules: FillRules, side: PaperSide, limit: Decimal | None, price: Decimal
) -> tuple[str, Decimal]:
    """What an open order holds back per unit: the base it sells, or what a buy should cost
    in quote, at its limit, else at `price` (the last price or the stop) plus the spread. No
    fee: a buy's fee is taken from the base it receives (or from BNB)."""
    if side == "sell":
        return spec.base, Decimal(1)
    if limit is not None:
        return spec.quote, limit
    return spec.quote, on_tick(rules.slippage.estimate("buy", price), spec.price_tick, "buy")
