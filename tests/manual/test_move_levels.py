"""Moving an open position's stop-loss / take-profit / trailing stop by hand (issue 12, item
10): REAL through the preview + one-time token, with the resting stop order replaced on the
Binance emulator through real ccxt; DEMO at once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import BinanceEmulator
from kestrel.errors import ConfirmationRefused, ManualError
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.manual import (
    ManualOutcome,
    MoveLevelsRequest,
    OutcomeStatus,
    PlaceOrderRequest,
    confirm_token,
    submit,
)
from kestrel.models import EventType, Order, OrderRole, OrderStatus
from kestrel.runtime import Runtime
from tests.manual.conftest import advance

ACTOR = "pytest"
SYMBOL = "BTC/USDT"


def move(**levels: str) -> MoveLevelsRequest:
    return MoveLevelsRequest.model_validate({"symbol": SYMBOL, **levels})


def stops(rt: Runtime) -> list[Order]:
    return rt.store.list_orders(roles=[OrderRole.STOP_LOSS])


def levels(rt: Runtime) -> tuple[Decimal | None, Decimal | None]:
    position = rt.store.open_position(SYMBOL)
    assert position is not None
    return position.stop_loss, position.take_profit


def real_position(rt: Runtime) -> None:
    """A REAL position of 0.00999 BTC bought at 20000, its stop-loss resting at 18000."""
    buy = PlaceOrderRequest.model_validate(
        {
            "symbol": SYMBOL,
            "side": "buy",
            "amount": "0.01",
            "stop_loss": "18000",
            "take_profit": "24000",
        }
    )
    token = submit(rt, buy, actor=ACTOR).token
    assert submit(rt, buy, actor=ACTOR, confirm=token).status is OutcomeStatus.PLACED
    protect_positions(rt.store, rt.exchange, ProtectionPolicy())
    [stop] = stops(rt)
    assert (stop.status, stop.stop_price) == (OrderStatus.OPEN, Decimal("18000"))


def preview(rt: Runtime, request: MoveLevelsRequest) -> ManualOutcome:
    outcome = submit(rt, request, actor=ACTOR)
    assert outcome.status is OutcomeStatus.NEEDS_CONFIRMATION, outcome.message
    assert outcome.token is not None
    return outcome


def test_real_a_moved_stop_replaces_the_resting_stop_order_once_confirmed(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    real_position(real_rt)
    request = move(stop_loss="19000", take_profit="25000")
    shown = preview(real_rt, request)
    assert "stop_loss: 18000 -> 19000" in shown.message
    assert levels(real_rt) == (Decimal("18000"), Decimal("24000"))  # nothing moved yet
    assert len(stops(real_rt)) == 1
    done = submit(real_rt, request, actor=ACTOR, confirm=shown.token)
    assert done.status is OutcomeStatus.APPLIED and done.errors == []
    assert levels(real_rt) == (Decimal("19000"), Decimal("25000"))
    old, new = stops(real_rt)
    assert old.status is OrderStatus.CANCELED
    assert (old.cancel_reason or "").startswith("moved: stop-loss 18000")
    assert (new.status, new.stop_price, new.amount) == (
        OrderStatus.OPEN,
        Decimal("19000"),
        Decimal("0.00999"),
    )
    assert done.orders == [new]
    [remote] = [
        o for o in emulator.engine.orders.values() if o.client_order_id == new.client_order_id
    ]
    assert (remote.status, remote.stop_price) == ("NEW", Decimal("19000"))
    [moved] = [
        e
        for e in real_rt.store.list_events(types=[EventType.SLTP_CREATED])
        if ":moved:" in e.event_id
    ]
    assert "by pytest" in moved.message


def test_real_telegram_confirm_runs_the_move_the_token_was_issued_for(real_rt: Runtime) -> None:
    real_position(real_rt)
    token = preview(real_rt, move(stop_loss="19500")).token
    assert token is not None
    done = confirm_token(real_rt, token, actor=ACTOR)
    assert done.status is OutcomeStatus.APPLIED
    assert levels(real_rt)[0] == Decimal("19500")


def test_real_a_token_for_a_position_that_changed_moves_nothing(real_rt: Runtime) -> None:
    real_position(real_rt)
    first = preview(real_rt, move(stop_loss="19000"))
    other = move(take_profit="26000")
    submit(real_rt, other, actor=ACTOR, confirm=preview(real_rt, other).token)
    with pytest.raises(ConfirmationRefused, match="changed since the preview") as refused:
        submit(real_rt, move(stop_loss="19000"), actor=ACTOR, confirm=first.token)
    assert refused.value.reason == "changed"
    assert levels(real_rt) == (Decimal("18000"), Decimal("26000"))
    assert [s.status for s in stops(real_rt)] == [OrderStatus.OPEN]


@pytest.mark.parametrize(
    ("request_levels", "error"),
    [
        ({"stop_loss": "20000"}, "stop-loss at 20000 is at or above the last price 20000"),
        ({"take_profit": "19999"}, "take-profit at 19999 is at or below the last price 20000"),
    ],
)
def test_real_a_level_that_would_sell_at_once_is_refused_with_what_to_do(
    real_rt: Runtime, request_levels: dict[str, str], error: str
) -> None:
    real_position(real_rt)
    with pytest.raises(ManualError, match=error) as refused:
        submit(real_rt, move(**request_levels), actor=ACTOR)
    assert "kestrel order close BTC/USDT" in str(refused.value)
    assert levels(real_rt) == (Decimal("18000"), Decimal("24000"))


def test_a_move_without_a_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="give a stop-loss, a take-profit or a trailing"):
        MoveLevelsRequest(symbol=SYMBOL)


def test_demo_moves_at_once_and_the_monitor_trails_as_asked(demo_rt: Runtime) -> None:
    buy = PlaceOrderRequest.model_validate(
        {"symbol": SYMBOL, "side": "buy", "amount": "0.01", "stop_loss": "19000"}
    )
    assert submit(demo_rt, buy, actor=ACTOR).status is OutcomeStatus.PLACED
    advance(demo_rt)  # fills at 20150
    request = move(stop_loss="19500", trailing_distance_pct="1", trailing_activation_pct="1")
    done = submit(demo_rt, request, actor=ACTOR)
    assert done.status is OutcomeStatus.APPLIED and done.token is None
    position = demo_rt.store.open_position(SYMBOL)
    assert position is not None
    assert (position.stop_loss, position.trailing_stop_pct, position.trailing_activation_pct) == (
        Decimal("19500"),
        Decimal("0.01"),
        Decimal("0.01"),
    )
    advance(demo_rt, 3)  # 20500 >= 20150 x 1.01: trailing, 1% under the high
    monitor_positions(demo_rt)
    assert levels(demo_rt)[0] == Decimal("20295")
