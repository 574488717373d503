"""Order intents as the cycle and the monitor build them."""

from __future__ import annotations

from decimal import Decimal

from kestrel.ids import client_order_id
from kestrel.mode import TradingMode
from kestrel.models import Order, OrderRole, OrderType, Side
from tests.lifecycle.scenario import SYMBOL


def intent(
    tag: str,
    amount: str = "0.5",
    *,
    side: Side = Side.BUY,
    type: OrderType = OrderType.MARKET,
    price: str | None = None,
    reference: str | None = "100",
    stop_loss: str | None = None,
    take_profit: str | None = None,
    symbol: str = SYMBOL,
    mode: TradingMode = TradingMode.REAL,
) -> Order:
    role = OrderRole.PRIMARY if side is Side.BUY else OrderRole.EXIT
    return Order(
        client_order_id=client_order_id(mode, f"test|{tag}", symbol, role, installation="test0001"),
        mode=mode,
        exchange="binance",
        symbol=symbol,
        side=side,
        type=type,
        role=role,
        amount=Decimal(amount),
        price=Decimal(price) if price else None,
        reference_price=Decimal(reference) if reference else None,
        stop_loss=Decimal(stop_loss) if stop_loss else None,
        take_profit=Decimal(take_profit) if take_profit else None,
        cycle_id=f"test|{tag}",
        reason="TEST",
    )
