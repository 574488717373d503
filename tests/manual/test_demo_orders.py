"""Manual orders, cancels and closes in DEMO, against the real paper exchange and store.

Prices (tests/manual/conftest.py): BTC/USDT last 20150 at the start; a market order fills at
the next candle's open (20150), slippage 0, fees 0.1% in USDT.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kestrel.errors import ManualError, RequestIdConflict
from kestrel.exchange.paper_state import PaperAccount
from kestrel.ids import client_order_id, installation_id
from kestrel.manual import (
    CloseAllRequest,
    ClosePositionRequest,
    OutcomeStatus,
    PlaceOrderRequest,
    cancel_order,
    submit,
)
from kestrel.mode import TradingMode
from kestrel.models import (
    EventType,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionStatus,
    ReasonCode,
    Side,
    StatusSource,
)
from kestrel.operator.live import effective_settings, set_setting
from kestrel.risk.controls import set_emergency_stop
from kestrel.runtime import Runtime
from tests.manual.conftest import advance

ACTOR = "pytest"


def paper_account(rt: Runtime) -> PaperAccount:
    found = rt.store.get_state("paper_account")
    assert found is not None
    return PaperAccount.model_validate(found[0])


def buy(amount: str = "100", amount_in: str = "quote", **kw: object) -> PlaceOrderRequest:
    return PlaceOrderRequest.model_validate(
        {"symbol": "BTC/USDT", "side": "buy", "amount": amount, "amount_in": amount_in, **kw}
    )


def test_market_buy_goes_through_risk_decide_and_place(demo_rt: Runtime) -> None:
    outcome = submit(demo_rt, buy(request_id="req-1"), actor=ACTOR)

    assert outcome.status is OutcomeStatus.PLACED
    [leg] = outcome.legs
    assert leg.approved
    assert [r.code for r in leg.reasons] == [ReasonCode.SIGNAL_BUY, ReasonCode.APPROVED]
    # 100 USDT at 20150 -> 0.0049627.. rounded down to the 0.00001 step
    assert (leg.amount, leg.price) == (Decimal("0.00496"), Decimal("20150"))
    assert leg.notional == Decimal("99.94400")
    assert leg.estimated_fee == Decimal("0.09994400")
    assert leg.position_after == Decimal("0.00496")
    assert leg.open_positions_after == 1
    # protection from the symbol's profile (SCALP/CONSERVATIVE: -0.4% / +1%), as automated
    assert (leg.stop_loss, leg.take_profit) == (Decimal("20069.40"), Decimal("20351.50"))

    cid = client_order_id(
        TradingMode.DEMO,
        "manual|req-1",
        "BTC/USDT",
        OrderRole.PRIMARY,
        installation=installation_id(demo_rt.store),
    )
    [order] = outcome.orders
    assert order.client_order_id == cid == leg.client_order_id
    assert (order.status, order.role, order.type) == (
        OrderStatus.OPEN,
        OrderRole.PRIMARY,
        OrderType.MARKET,
    )
    assert order.cycle_id == "manual|req-1"
    assert demo_rt.exchange.fetch_order(None, params={"clientOrderId": cid})["id"] == "1"

    decided = demo_rt.store.list_events(types=[EventType.TRADE_DECIDED])
    assert [e.client_order_id for e in decided] == [cid]
    assert decided[0].data["manual"] is True and decided[0].data["by"] == ACTOR
    assert demo_rt.store.list_events(types=[EventType.ORDER_CREATED])

    advance(demo_rt)
    filled = demo_rt.store.get_order(cid)
    assert filled is not None and filled.status is OrderStatus.FILLED
    position = demo_rt.store.open_position("BTC/USDT")
    assert position is not None
    assert position.amount == Decimal("0.00495504")  # less the 0.1% fee, paid in BTC
    assert (position.stop_loss, position.take_profit) == (Decimal("20069.40"), Decimal("20351.50"))


def test_same_request_id_never_places_twice(demo_rt: Runtime) -> None:
    first = submit(demo_rt, buy(request_id="again"), actor=ACTOR)
    second = submit(demo_rt, buy(request_id="again"), actor=ACTOR)
    advance(demo_rt)
    third = submit(demo_rt, buy(request_id="again"), actor=ACTOR)

    assert first.status is OutcomeStatus.PLACED
    assert second.status is third.status is OutcomeStatus.ALREADY_DONE
    assert [o.client_order_id for o in second.orders] == [first.orders[0].client_order_id]
    assert third.orders[0].status is OrderStatus.FILLED
    assert len(demo_rt.exchange.fetch_orders()) == 1
    assert len(demo_rt.store.list_orders()) == 1


def test_request_id_reused_for_another_action_is_refused(demo_rt: Runtime) -> None:
    submit(demo_rt, buy(request_id="mine"), actor=ACTOR)
    with pytest.raises(RequestIdConflict, match="different action"):
        submit(demo_rt, buy("200", request_id="mine"), actor=ACTOR)
    assert len(demo_rt.exchange.fetch_orders()) == 1


def test_base_amount_is_rounded_down_to_the_step(demo_rt: Runtime) -> None:
    outcome = submit(demo_rt, buy("0.0123456", amount_in="base"), actor=ACTOR)
    assert outcome.orders[0].amount == Decimal("0.01234")
    assert outcome.legs[0].warnings == ["amount 0.0123456 rounded down to 0.01234 (step)"]


@pytest.mark.parametrize(
    ("request_kw", "code"),
    [
        ({"amount": "3"}, ReasonCode.BELOW_MIN_NOTIONAL),  # 3 USDT < 5 minimum
        ({"amount": "0.000001", "amount_in": "base"}, ReasonCode.BELOW_MIN_AMOUNT),
        ({"amount": "20000"}, ReasonCode.INSUFFICIENT_BALANCE),  # 10000 USDT in the account
    ],
)
def test_size_rules_block_and_nothing_is_placed(
    demo_rt: Runtime, request_kw: dict[str, str], code: ReasonCode
) -> None:
    outcome = submit(demo_rt, buy(**request_kw), actor=ACTOR)  # type: ignore[arg-type]
    assert outcome.status is OutcomeStatus.BLOCKED
    assert code in [r.code for r in outcome.legs[0].reasons]
    assert code.value in outcome.message
    assert outcome.orders == []
    assert demo_rt.store.list_orders() == []
    assert demo_rt.store.get_state("paper_account") is None or not paper_account(demo_rt).orders
    [blocked] = demo_rt.store.list_events(types=[EventType.TRADE_BLOCKED])
    assert code.value in blocked.reasons and blocked.data["manual"] is True


def test_emergency_stop_blocks_manual_buys(demo_rt: Runtime) -> None:
    set_emergency_stop(demo_rt.store, active=True, reason="test", by=ACTOR)
    outcome = submit(demo_rt, buy(), actor=ACTOR)
    assert outcome.status is OutcomeStatus.BLOCKED
    assert [r.code for r in outcome.legs[0].reasons] == [ReasonCode.BLOCKED_EMERGENCY_STOP]
    assert demo_rt.store.list_orders() == []


def test_trading_disabled_live_blocks_the_symbol(demo_rt: Runtime) -> None:
    set_setting(
        demo_rt.store, demo_rt.settings, "trade_enabled", "false", symbol="BTC/USDT", by=ACTOR
    )
    demo_rt.settings = effective_settings(demo_rt.settings, demo_rt.store)
    outcome = submit(demo_rt, buy(), actor=ACTOR)
    assert [r.code for r in outcome.legs[0].reasons] == [ReasonCode.SKIP_DISABLED_TRADE]
    eth = buy(symbol="ETH/USDT", stop_loss="1900")
    assert submit(demo_rt, eth, actor=ACTOR).status is OutcomeStatus.PLACED


def test_no_pyramiding_and_no_sell_without_a_position(demo_rt: Runtime) -> None:
    sell = PlaceOrderRequest(symbol="BTC/USDT", side=Side.SELL, amount=Decimal("0.001"))
    # every reason is listed: no position, and no BTC to sell either
    assert [r.code for r in submit(demo_rt, sell, actor=ACTOR).legs[0].reasons] == [
        ReasonCode.SKIP_NO_POSITION,
        ReasonCode.INSUFFICIENT_BALANCE,
    ]
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)
    outcome = submit(demo_rt, buy(), actor=ACTOR)
    assert ReasonCode.SKIP_POSITION_OPEN in [r.code for r in outcome.legs[0].reasons]


def test_dry_run_writes_nothing(demo_rt: Runtime) -> None:
    outcome = submit(demo_rt, buy(), actor=ACTOR, dry_run=True)
    assert outcome.status is OutcomeStatus.PREVIEW and outcome.legs[0].approved
    assert demo_rt.store.list_orders() == []
    assert demo_rt.store.list_events() == []


def test_limit_order_with_stop_loss_and_take_profit_then_cancel(demo_rt: Runtime) -> None:
    request = buy(
        "0.01",
        amount_in="base",
        type="limit",
        price="19000.004",
        stop_loss="18000",
        take_profit="22000",
    )
    outcome = submit(demo_rt, request, actor=ACTOR)
    [order] = outcome.orders
    assert (order.type, order.price, order.status) == (
        OrderType.LIMIT,
        Decimal("19000.00"),
        OrderStatus.OPEN,
    )
    assert (order.stop_loss, order.take_profit) == (Decimal("18000"), Decimal("22000"))
    assert outcome.legs[0].fee_rate == Decimal("0.001")
    reserved = paper_account(demo_rt).used("USDT")
    assert reserved == Decimal("190.00")  # 0.01 x 19000 (a buy's fee is paid in BTC)

    result = cancel_order(demo_rt, order.client_order_id, actor=ACTOR)
    assert result.canceled
    stored = demo_rt.store.get_order(order.client_order_id)
    assert stored is not None and stored.status is OrderStatus.CANCELED
    assert demo_rt.exchange.fetch_order("1")["status"] == "canceled"
    assert paper_account(demo_rt).used("USDT") == 0
    [event] = demo_rt.store.list_events(types=[EventType.ORDER_CANCELED])
    assert f"canceled by {ACTOR}" in event.reasons


def test_cancel_by_exchange_id_and_refusals(demo_rt: Runtime) -> None:
    limit = buy("0.01", amount_in="base", type="limit", price="19000")
    order = submit(demo_rt, limit, actor=ACTOR).orders[0]
    assert order.exchange_order_id == "1"
    assert cancel_order(demo_rt, "1", actor=ACTOR).canceled
    with pytest.raises(ManualError, match="already CANCELED"):
        cancel_order(demo_rt, order.client_order_id, actor=ACTOR)
    with pytest.raises(ManualError, match="no order 'nope'"):
        cancel_order(demo_rt, "nope", actor=ACTOR)


def test_cancel_of_an_order_that_filled_meanwhile_records_the_fill(demo_rt: Runtime) -> None:
    order = submit(demo_rt, buy(), actor=ACTOR).orders[0]
    assert demo_rt.feed is not None
    demo_rt.feed.advance()  # the paper exchange fills it; our store has not synced yet
    result = cancel_order(demo_rt, order.client_order_id, actor=ACTOR)
    assert not result.canceled
    assert result.order.status is OrderStatus.FILLED
    assert demo_rt.store.open_position("BTC/USDT") is not None


def test_close_part_then_the_rest(demo_rt: Runtime) -> None:
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)  # bought 0.00496 at 20150, 0.00495504 after the fee in BTC; last 20200

    half = submit(
        demo_rt, ClosePositionRequest(symbol="BTC/USDT", fraction=Decimal("0.5")), actor=ACTOR
    )
    [leg] = half.legs
    assert (leg.side, leg.amount, leg.price) == (Side.SELL, Decimal("0.00247"), Decimal("20200"))
    assert leg.position_after == Decimal("0.00248504")
    [order] = half.orders
    assert (order.role, order.type) == (OrderRole.EXIT, OrderType.MARKET)
    advance(demo_rt)
    position = demo_rt.store.open_position("BTC/USDT")
    assert position is not None and position.amount == Decimal("0.00248504")

    rest = submit(demo_rt, ClosePositionRequest(symbol="BTC/USDT"), actor=ACTOR)
    assert rest.legs[0].amount == Decimal("0.00248")  # the step; 0.00000504 is dust
    advance(demo_rt)
    assert demo_rt.store.open_position("BTC/USDT") is None
    [closed] = demo_rt.store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl > 0


def test_closes_are_not_blocked_by_the_emergency_stop(demo_rt: Runtime) -> None:
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)
    set_emergency_stop(demo_rt.store, active=True, reason="panic", by=ACTOR)
    outcome = submit(demo_rt, ClosePositionRequest(symbol="BTC/USDT"), actor=ACTOR)
    assert outcome.status is OutcomeStatus.PLACED


def test_close_errors_name_the_problem(demo_rt: Runtime) -> None:
    with pytest.raises(ManualError, match="no open BTC/USDT position"):
        submit(demo_rt, ClosePositionRequest(symbol="BTC/USDT"), actor=ACTOR)
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)
    with pytest.raises(ManualError, match=r"holds 0\.00495504; cannot close 1"):
        submit(demo_rt, ClosePositionRequest(symbol="BTC/USDT", amount=Decimal("1")), actor=ACTOR)
    tiny = submit(
        demo_rt, ClosePositionRequest(symbol="BTC/USDT", amount=Decimal("0.0001")), actor=ACTOR
    )
    assert tiny.status is OutcomeStatus.BLOCKED
    assert tiny.legs[0].reasons[0].code is ReasonCode.BELOW_MIN_NOTIONAL


def test_close_all(demo_rt: Runtime) -> None:
    assert submit(demo_rt, CloseAllRequest(), actor=ACTOR).status is OutcomeStatus.NOTHING_TO_DO
    submit(demo_rt, buy(), actor=ACTOR)
    submit(demo_rt, buy(symbol="ETH/USDT", stop_loss="1900"), actor=ACTOR)
    advance(demo_rt)
    outcome = submit(demo_rt, CloseAllRequest(request_id="flat"), actor=ACTOR)
    assert outcome.status is OutcomeStatus.PLACED
    assert sorted(o.symbol for o in outcome.orders) == ["BTC/USDT", "ETH/USDT"]
    assert len({o.client_order_id for o in outcome.orders}) == 2
    advance(demo_rt)
    assert demo_rt.store.list_positions(status=PositionStatus.OPEN) == []
    again = submit(demo_rt, CloseAllRequest(request_id="flat"), actor=ACTOR)
    assert again.status is OutcomeStatus.ALREADY_DONE


def test_symbol_must_be_on_the_watchlist(demo_rt: Runtime) -> None:
    with pytest.raises(ManualError, match="SOL/USDT is not on the watchlist"):
        submit(demo_rt, buy(symbol="SOL/USDT"), actor=ACTOR)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "limit"}, "a limit order needs a price"),
        ({"price": "100"}, "a market order takes no price"),
        ({"side": "sell", "stop_loss": "1"}, "give them on the buy"),
        ({"stop_loss": "30000", "take_profit": "25000"}, "must be below take_profit"),
        ({"amount": "-1"}, "greater than 0"),
        ({"symbol": "btcusdt"}, "BASE/QUOTE"),
        ({"request_id": "has space"}, "1-64 characters"),
        ({"type": "stop_market"}, "market or limit"),
    ],
)
def test_bad_requests_say_what_is_wrong(fields: dict[str, str], message: str) -> None:
    data = {"symbol": "BTC/USDT", "side": "buy", "amount": "1", **fields}
    with pytest.raises(ValueError, match=message):
        PlaceOrderRequest.model_validate(data)


def test_stop_loss_above_the_market_is_refused(demo_rt: Runtime) -> None:
    with pytest.raises(ManualError, match="stop_loss 21000 must be below the order price 20150"):
        submit(demo_rt, buy(stop_loss="21000"), actor=ACTOR)


def test_an_atr_stop_needs_candles_or_an_explicit_stop_loss(demo_rt: Runtime) -> None:
    """ETH/USDT trades the default profile, whose stop is 1.5 x ATR: with three candles there
    is no ATR, so (as for the cycle) no entry without a stop - unless the operator gives one."""
    blocked = submit(demo_rt, buy(symbol="ETH/USDT"), actor=ACTOR)
    assert blocked.status is OutcomeStatus.BLOCKED
    assert [r.code for r in blocked.legs[0].reasons] == [ReasonCode.SKIP_INSUFFICIENT_DATA]
    outcome = submit(demo_rt, buy(symbol="ETH/USDT", stop_loss="1950"), actor=ACTOR)
    assert outcome.status is OutcomeStatus.PLACED
    leg = outcome.legs[0]
    assert leg.stop_loss == Decimal("1950")
    assert leg.take_profit is None or leg.take_profit > leg.price


def test_exposure_caps_refuse_rather_than_clip(demo_rt: Runtime) -> None:
    """max_symbol_pct 25% of 10000 USDT equity: 2500 USD of BTC/USDT at most."""
    outcome = submit(demo_rt, buy("3000"), actor=ACTOR)
    assert outcome.status is OutcomeStatus.BLOCKED
    [reason] = outcome.legs[0].reasons
    assert reason.code is ReasonCode.SKIP_MAX_EXPOSURE
    assert reason.values["cap"] == "max_symbol_pct"
    assert submit(demo_rt, buy("2400"), actor=ACTOR).status is OutcomeStatus.PLACED


def test_an_exit_that_never_reached_the_exchange_does_not_block_a_close(demo_rt: Runtime) -> None:
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)
    position = demo_rt.store.open_position("BTC/USDT")
    assert position is not None
    # The monitor's exit whose process died before sending it (it had canceled the stop).
    stale = Order(
        client_order_id=client_order_id(
            TradingMode.DEMO,
            f"exit|{position.position_id}|0",
            "BTC/USDT",
            OrderRole.EXIT,
            installation=installation_id(demo_rt.store),
        ),
        mode=TradingMode.DEMO,
        exchange=demo_rt.exchange.id,
        symbol="BTC/USDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        role=OrderRole.EXIT,
        amount=position.amount,
        position_id=position.position_id,
        reason="TAKE_PROFIT_HIT",
    )
    demo_rt.store.insert_order(stale)
    outcome = submit(demo_rt, ClosePositionRequest(symbol="BTC/USDT"), actor=ACTOR)
    assert outcome.status is OutcomeStatus.PLACED
    superseded = demo_rt.store.get_order(stale.client_order_id)
    assert superseded is not None
    assert (superseded.status, superseded.status_source, superseded.send_attempts) == (
        OrderStatus.CANCELED,
        StatusSource.SUPERSEDED,
        0,
    )
    assert outcome.orders[0].client_order_id in (superseded.cancel_reason or "")
    advance(demo_rt)
    assert demo_rt.store.open_position("BTC/USDT") is None
