"""Order and trade records, and their rendering in Binance's exact JSON shapes.

Shapes follow the Binance spot REST docs (new order ACK/RESULT/FULL, query order, cancel,
myTrades): ints for ids and times, 8-decimal strings for amounts. ccxt parses these fields by
name, so a missing or renamed key silently becomes None on the client side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

ZERO = Decimal("0")
EIGHT = Decimal("0.00000001")

TERMINAL = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})
STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
LIMIT_TYPES = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", *sorted(STOP_TYPES)]


def fmt(value: Decimal) -> str:
    """Binance's 8-decimal amount string, e.g. Decimal('0.1') -> '0.10000000'."""
    return f"{value.quantize(EIGHT, rounding=ROUND_HALF_EVEN):f}"


def q8(value: Decimal) -> Decimal:
    """Round to the 8 decimals Binance books in; balances move by exactly these amounts."""
    return value.quantize(EIGHT, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class Trade:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill_json(self) -> dict[str, Any]:
        """An entry of a FULL new-order response's `fills`."""
        return {
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }

    def my_trade_json(self) -> dict[str, Any]:
        """An entry of GET /api/v3/myTrades."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "quoteQty": fmt(self.quote_qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }


@dataclass(slots=True)
class Order:
    order_id: int
    api_key: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    stop_price: Decimal | None
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    reserve_asset: str
    reserved: Decimal = ZERO
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    working_time: int = -1
    triggered: bool = False
    iceberg_qty: Decimal | None = None
    trades: list[Trade] = field(default_factory=list)
    # For the eventual-consistency fault: when (request sequence, wall clock) it left the book.
    closed_seq: int | None = None
    closed_wall: float | None = None

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    def _common(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "origQuoteOrderQty": fmt(self.orig_quote_qty),
            "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }
        if self.stop_price is not None:
            body["stopPrice"] = fmt(self.stop_price)
        if self.iceberg_qty is not None:
            body["icebergQty"] = fmt(self.iceberg_qty)
        return body

    def new_order_json(self, resp_type: str, fills: list[Trade]) -> dict[str, Any]:
        """POST /api/v3/order response; `fills` are the trades made while placing it."""
        head = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": self.time,
        }
        if resp_type == "ACK":
            return head
        body = {**head, **self._common()}
        body["workingTime"] = self.working_time
        body["selfTradePreventionMode"] = "NONE"
        if resp_type == "FULL":
            body["fills"] = [t.fill_json() for t in fills]
        return body

    def query_json(self) -> dict[str, Any]:
        """GET /api/v3/order, openOrders and allOrders entries."""
        body = self._common()
        body.setdefault("stopPrice", fmt(ZERO))
        body.setdefault("icebergQty", fmt(ZERO))
        body.update(
            {
                "time": self.time,
                "updateTime": self.update_time,
                "isWorking": self.working_time != -1,
                "workingTime": self.working_time,
                "selfTradePreventionMode": "NONE",
            }
        )
        return body

    def cancel_json(self, cancel_client_id: str, transact_time: int) -> dict[str, Any]:
        """DELETE /api/v3/order: `clientOrderId` is the cancel's own id, as on Binance."""
        body = self._common()
        body["origClientOrderId"] = self.client_order_id
        body["clientOrderId"] = cancel_client_id
        body["transactTime"] = transact_time
        body["selfTradePreventionMode"] = "NONE"
        return body
