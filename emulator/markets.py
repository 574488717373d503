"""A market's trading rules (Binance filters) and its exchangeInfo entry.

The same numbers are published in exchangeInfo and enforced on orders, so ccxt's parsed
precision/limits are exactly what the emulator rejects on: a test that passes against the
emulator cannot be relying on rules the emulator does not publish.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from emulator.candles import CandleFeed
from emulator.config import MarketConfig, default_min_notional, default_tick
from emulator.errors import BinanceError, filter_failure
from emulator.orders import ORDER_TYPES, fmt


class Market:
    """Filters plus the candle feed of one symbol."""

    def __init__(self, config: MarketConfig) -> None:
        self.config = config
        self.symbol = config.symbol
        self.id = config.market_id
        self.base = config.base
        self.quote = config.quote
        self.feed: CandleFeed = config.load_feed()
        self.tick = config.tick_size or default_tick(self.feed.candles[0].close)
        self.step = config.step_size
        self.min_qty = config.min_qty or self.step
        self.max_qty = config.max_qty
        self.min_price = config.min_price or self.tick
        self.max_price = config.max_price
        notional = config.min_notional
        self.min_notional = default_min_notional(self.quote) if notional is None else notional
        self.max_notional = config.max_notional
        self.order_types = list(config.order_types or ORDER_TYPES)
        for name, value in (("tick_size", self.tick), ("step_size", self.step)):
            if value < Decimal("0.00000001"):
                raise ValueError(f"{self.symbol}: {name} {value} is finer than 8 decimals")

    # -- rounding -----------------------------------------------------------------------------

    def floor_qty(self, qty: Decimal) -> Decimal:
        return (qty / self.step).to_integral_value(rounding=ROUND_FLOOR) * self.step

    def round_price(self, price: Decimal, up: bool) -> Decimal:
        mode = ROUND_CEILING if up else ROUND_FLOOR
        return (price / self.tick).to_integral_value(rounding=mode) * self.tick

    # -- filters ------------------------------------------------------------------------------

    def check_qty(self, qty: Decimal) -> None:
        if qty < self.min_qty or qty > self.max_qty or (qty - self.min_qty) % self.step != 0:
            raise filter_failure("LOT_SIZE")

    def check_price(self, price: Decimal) -> None:
        bad_tick = (price - self.min_price) % self.tick != 0
        if price < self.min_price or price > self.max_price or bad_tick:
            raise filter_failure("PRICE_FILTER")

    def check_order_type(self, order_type: str) -> None:
        if order_type not in self.order_types:
            raise BinanceError(-1013, "Order type not supported for this symbol.")

    def check_notional(self, notional: Decimal) -> None:
        if notional < self.min_notional or notional > self.max_notional:
            raise filter_failure("NOTIONAL")

    # -- exchangeInfo -------------------------------------------------------------------------

    def exchange_info(self) -> dict[str, Any]:
        return {
            "symbol": self.id,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": self.order_types,
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(self.min_price),
                    "maxPrice": fmt(self.max_price),
                    "tickSize": fmt(self.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(self.min_qty),
                    "maxQty": fmt(self.max_qty),
                    "stepSize": fmt(self.step),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(self.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": fmt(self.max_notional),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 0,
                },
            ],
            "permissions": ["SPOT"],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }
