"""An order's fees through `absorb`, against the emulator with the real ccxt client: kept per
currency (never added across currencies), a fee in BNB valued at the exchange's BNB/USDT
price when the fill is absorbed, and flagged when that market has no price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kestrel.execution.orders import absorb
from kestrel.models import EventType, Order, StatusSource
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World, market


def filled_in_two_currencies(order: Order) -> dict[str, Any]:
    """A ccxt order report whose two trades paid their fees in USDT and in BNB."""
    trade = {"order": "901", "price": 100.0, "timestamp": 1_700_000_000_000}
    return {
        "id": "901",
        "clientOrderId": order.client_order_id,
        "status": "closed",
        "filled": 0.5,
        "average": 100.0,
        "trades": [
            {**trade, "id": "t1", "amount": 0.2, "fee": {"cost": 0.02, "currency": "USDT"}},
            {**trade, "id": "t2", "amount": 0.3, "fee": {"cost": 0.0001, "currency": "BNB"}},
        ],
    }


def absorbed(world: World) -> Order:
    order = world.store.insert_order(intent("fees"))
    return absorb(
        world.store,
        world.exchange,
        order,
        filled_in_two_currencies(order),
        StatusSource.ORDER_HISTORY,
    )


def test_an_order_keeps_its_fees_per_currency_and_values_bnb_at_the_exchange_price(
    make_world: MakeWorld,
) -> None:
    world = make_world(markets=[market(), market("BNB/USDT", scale=Decimal(3))])
    bnb_price = Decimal(str(world.exchange.fetch_ticker("BNB/USDT")["last"]))
    order = absorbed(world)
    assert order.fees == {"USDT": Decimal("0.02"), "BNB": Decimal("0.0001")}
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.02"), "USDT")
    bnb_fill = next(f for f in world.store.list_fills() if f.trade_id == "t2")
    assert bnb_fill.fee_rates == {"BNB": bnb_price}
    position = world.store.open_position(SYMBOL)
    assert position is not None
    assert position.fees_paid == Decimal("0.02") + Decimal("0.0001") * bnb_price
    assert position.fees_unvalued == {}


def test_a_bnb_fee_without_a_bnb_market_is_flagged_not_zero(world: World) -> None:
    order = absorbed(world)
    assert order.fees == {"USDT": Decimal("0.02"), "BNB": Decimal("0.0001")}
    position = world.store.open_position(SYMBOL)
    assert position is not None
    assert (position.fees_paid, position.fees_unvalued) == (
        Decimal("0.02"),
        {"BNB": Decimal("0.0001")},
    )
    [flag] = world.store.list_events(types=[EventType.FEE_NOT_VALUED])
    assert flag.symbol == SYMBOL and flag.data == {"BNB": "0.0001"}
