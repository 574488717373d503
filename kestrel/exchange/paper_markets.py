"""Market rules for the paper exchange: a Binance-like table, a fallback derived from the
price, and ccxt-shaped market dicts (so `MarketSpec.from_ccxt(paper.market(s))` round-trips).

The table mirrors Binance spot filters (LOT_SIZE step, PRICE_FILTER tick, NOTIONAL minimum)
closely enough that an order the paper exchange accepts would also pass Binance's checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from kestrel.models import MarketSpec

# quote currency -> Binance's minimum order value (NOTIONAL filter) in that currency
MIN_NOTIONAL: dict[str, Decimal] = {
    "USDT": Decimal("5"),
    "USDC": Decimal("5"),
    "FDUSD": Decimal("5"),
    "TUSD": Decimal("5"),
    "BUSD": Decimal("5"),
    "BTC": Decimal("0.0001"),
    "ETH": Decimal("0.001"),
    "BNB": Decimal("0.01"),
}

# The order types every paper market takes, named as Binance lists them in a market's
# info.orderTypes (which kestrel.exchange.ccxt_exchange.native_stop_kind reads).
ORDER_TYPES = ["LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"]

# symbol: (amount step, price tick)
_TABLE: dict[str, tuple[str, str]] = {
    "BTC/USDT": ("0.00001", "0.01"),
    "ETH/USDT": ("0.0001", "0.01"),
    "BNB/USDT": ("0.001", "0.01"),
    "SOL/USDT": ("0.001", "0.01"),
    "XRP/USDT": ("0.1", "0.0001"),
    "ADA/USDT": ("0.1", "0.0001"),
    "DOGE/USDT": ("1", "0.00001"),
    "LTC/USDT": ("0.001", "0.01"),
    "DOT/USDT": ("0.01", "0.001"),
    "AVAX/USDT": ("0.01", "0.01"),
    "LINK/USDT": ("0.01", "0.01"),
    "TRX/USDT": ("0.1", "0.0001"),
    "MATIC/USDT": ("0.1", "0.0001"),
    "BTC/USDC": ("0.00001", "0.01"),
    "ETH/USDC": ("0.0001", "0.01"),
    "ETH/BTC": ("0.0001", "0.00001"),
    "BNB/BTC": ("0.001", "0.000001"),
    "SOL/BTC": ("0.001", "0.0000001"),
    "LTC/BTC": ("0.001", "0.000001"),
    "XRP/BTC": ("1", "0.00000001"),
    "ADA/BTC": ("0.1", "0.00000001"),
    "DOGE/BTC": ("1", "0.00000001"),
    "DASH/BTC": ("0.001", "0.000001"),
    "XMR/BTC": ("0.001", "0.000001"),
    "ZEC/BTC": ("0.001", "0.000001"),
    "XLM/BTC": ("1", "0.00000001"),
    "NXT/BTC": ("1", "0.00000001"),
    "POWR/BTC": ("1", "0.00000001"),
    "LINK/BTC": ("0.01", "0.0000001"),
    "XRP/ETH": ("1", "0.00000001"),
}


def _split(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"not a spot symbol BASE/QUOTE: {symbol!r}")
    return base, quote


def _spec(symbol: str, step: Decimal, tick: Decimal) -> MarketSpec:
    base, quote = _split(symbol)
    return MarketSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        amount_step=step,
        price_tick=tick,
        min_amount=step,
        min_notional=MIN_NOTIONAL.get(quote, Decimal("0")),
    )


def default_markets() -> dict[str, MarketSpec]:
    """The built-in table of common USDT and BTC pairs."""
    return {s: _spec(s, Decimal(step), Decimal(tick)) for s, (step, tick) in _TABLE.items()}


def _power_of_ten(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


def derive_market(symbol: str, price: Decimal) -> MarketSpec:
    """A plausible spec from the price's magnitude, for symbols the table lacks.

    tick: the price to 6 significant digits (at least 1e-8; 60000 -> 0.1, 3000 -> 0.01). step: a
    power of ten worth 1/100 to 1/10 of the quote's minimum notional (without a minimum, of
    1/10000 of the price), between 1e-8 and 1.
    """
    if price <= 0:
        raise ValueError(f"{symbol}: cannot derive a market from price {price}")
    _base, quote = _split(symbol)
    magnitude = math.floor(math.log10(price))
    tick = _power_of_ten(max(magnitude - 5, -8))
    unit_value = MIN_NOTIONAL.get(quote) or price * Decimal("0.0001")
    step_exponent = math.floor(math.log10(unit_value / price)) - 1
    step = _power_of_ten(min(max(step_exponent, -8), 0))
    return _spec(symbol, step, tick)


def markets_for(
    symbols: Iterable[str], prices: dict[str, Decimal] | None = None
) -> dict[str, MarketSpec]:
    """Specs for `symbols`: the table's, else derived from `prices[symbol]`."""
    table = default_markets()
    out: dict[str, MarketSpec] = {}
    for symbol in symbols:
        if symbol in table:
            out[symbol] = table[symbol]
        elif prices and symbol in prices:
            out[symbol] = derive_market(symbol, prices[symbol])
        else:
            raise ValueError(
                f"{symbol}: not in the default market table and no price to derive from"
            )
    return out


def ccxt_market(spec: MarketSpec) -> dict[str, Any]:
    """The ccxt unified market structure (TICK_SIZE precision mode, like ccxt's Binance)."""
    return {
        "id": spec.symbol.replace("/", ""),
        "symbol": spec.symbol,
        "base": spec.base,
        "quote": spec.quote,
        "baseId": spec.base,
        "quoteId": spec.quote,
        "settle": None,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "active": True,
        "linear": None,
        "inverse": None,
        "contractSize": None,
        "taker": float(spec.taker_fee),
        "maker": float(spec.maker_fee),
        "percentage": True,
        "tierBased": False,
        "feeSide": "get",  # as ccxt says of Binance spot: paid in the currency received
        "precision": {"amount": float(spec.amount_step), "price": float(spec.price_tick)},
        "limits": {
            "amount": {"min": float(spec.min_amount), "max": None},
            "price": {"min": float(spec.price_tick), "max": None},
            "cost": {"min": float(spec.min_notional), "max": None},
            "leverage": {"min": None, "max": None},
        },
        "info": {**spec.model_dump(mode="json"), "orderTypes": list(ORDER_TYPES)},
    }
