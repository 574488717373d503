"""A manual order waits for a symbol another run is trading, and is refused with that run's
name when the wait runs out: nothing is placed, nothing is lost (the same request id
places it later)."""

from __future__ import annotations

import pytest

from kestrel.execution.lease import LeaseHolder, acquire, release, symbol_key
from kestrel.ids import installation_id
from kestrel.manual import PlaceOrderRequest, submit
from kestrel.models import OrderStatus
from kestrel.runtime import Runtime


def buy(request_id: str) -> PlaceOrderRequest:
    return PlaceOrderRequest.model_validate(
        {
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": "100",
            "amount_in": "quote",
            "request_id": request_id,
        }
    )


def test_a_manual_order_on_a_busy_symbol_is_refused_naming_the_holder(
    demo_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kestrel.manual._record.OPERATOR_WAIT_S", 0.0)  # refuse at once
    holder = LeaseHolder.here(installation_id(demo_rt.store), "trading-cycle run brave-owl")
    lease = acquire(demo_rt.store, symbol_key(demo_rt.exchange.id, "BTC/USDT"), holder)

    refused = submit(demo_rt, buy("req-busy"), actor="alice")
    assert refused.orders == []
    [error] = refused.errors
    assert "LeaseBusy" in error and "being traded by trading-cycle run brave-owl" in error
    assert demo_rt.store.list_orders() == []

    release(demo_rt.store, lease)
    again = submit(demo_rt, buy("req-busy"), actor="alice")  # same request: now placed
    [order] = again.orders
    assert order.status is OrderStatus.OPEN
