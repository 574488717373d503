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
from kestrel.exchange.paper_matching import adverse
from kestrel.exchange.paper_state import PaperSide, PaperType
from kestrel.models import MarketSpec
from kestrel.money import to_decimal
from kestrel.settings import PaperSettings

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
    reserve: Decimal


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
    """(kind, stop price). "market" + params stopPrice/triggerPrice is a stop-market order."""
    value = type.lower()
    raw_stop = params.get("stopPrice", params.get("triggerPrice"))
    stop = to_decimal(raw_stop) if raw_stop is not None else None
    if value in ("stop_market", "stop_loss", "stop"):
        if stop is None:
            raise PaperOrderRejected(f"a {value} order needs params stopPrice (or triggerPrice)")
        return "stop_market", stop
    if value == "market":
        return ("stop_market", stop) if stop is not None else ("market", None)
    if value == "limit":
        if stop is not None:
            raise PaperOrderRejected("stop-limit orders are not supported by the paper exchange")
        return "limit", None
    raise PaperOrderRejected(
        f"order type {type!r} is not supported; use market, limit or stop_market"
    )


def validate_request(
    spec: MarketSpec,
    settings: PaperSettings,
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
    if kind == "limit":
        if price is None or to_decimal(price) <= 0:
            raise PaperOrderRejected(f"{symbol}: a limit order needs a price > 0")
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
    currency, reserve = reservation(spec, settings, kind, side_, qty, limit or stop or last)
    return OrderRequest(symbol, kind, side_, qty, limit, stop, client_id, currency, reserve)


def reservation(
    spec: MarketSpec,
    settings: PaperSettings,
    kind: PaperType,
    side: PaperSide,
    qty: Decimal,
    price: Decimal,
) -> tuple[str, Decimal]:
    """What an open order holds back: the base it sells, or what a buy should cost in quote
    (at its limit, or for market/stop orders at `price` plus slippage), fee included."""
    if side == "sell":
        return spec.base, qty
    fee = max(settings.taker_fee, settings.maker_fee)
    if kind != "limit":
        price = adverse(price, "buy", settings.slippage_bps, spec.price_tick)
    return spec.quote, qty * price * (1 + fee)
