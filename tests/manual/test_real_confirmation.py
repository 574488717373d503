"""REAL mode against the Binance emulator through real ccxt: every manual order and close
takes a preview + one-time token, and no bad token ever reaches the exchange.

"Nothing placed" is checked where it matters: the emulator's count of POST /api/v3/order
(order creations it received), plus the store.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from emulator import BinanceEmulator, FaultRule
from kestrel.errors import ConfirmationRefused, RequestIdConflict, SecurityError
from kestrel.execution.sync import sync_orders
from kestrel.manual import (
    CloseAllRequest,
    ClosePositionRequest,
    ManualOutcome,
    OutcomeStatus,
    PlaceOrderRequest,
    cancel_order,
    confirm_token,
    submit,
)
from kestrel.manual.reset import reset_paper_account
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, OrderStatus, OrderType, PositionStatus, Side
from kestrel.operator.tokens import CONFIRMATIONS_KEY, token_hash
from kestrel.runtime import Runtime
from tests.manual.conftest import Clock

ACTOR = "pytest"
ORDER_PATH = "/api/v3/order"


def creations(emu: BinanceEmulator) -> int:
    return emu.request_count(ORDER_PATH, "POST")


def buy(amount: str = "0.01", **kw: object) -> PlaceOrderRequest:
    return PlaceOrderRequest.model_validate(
        {"symbol": "BTC/USDT", "side": "buy", "amount": amount, **kw}
    )


def preview(rt: Runtime, request: object, clock: Clock | None = None) -> ManualOutcome:
    kw = {"now": clock} if clock is not None else {}
    outcome = submit(rt, request, actor=ACTOR, **kw)  # type: ignore[arg-type]
    assert outcome.status is OutcomeStatus.NEEDS_CONFIRMATION, outcome.message
    assert outcome.token is not None
    return outcome


def security_reasons(rt: Runtime) -> list[str]:
    return [r for e in rt.store.list_events(types=[EventType.SECURITY]) for r in e.reasons]


def test_first_call_only_previews_and_stores_just_a_hash(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    outcome = preview(real_rt, buy())

    [leg] = outcome.legs
    assert leg.approved
    assert (leg.price, leg.amount) == (Decimal("20000"), Decimal("0.01"))
    assert leg.notional == Decimal("200")
    assert leg.notional * leg.fee_rate == leg.estimated_fee
    assert leg.position_after == leg.exposure_after / leg.price == Decimal("0.01")
    assert outcome.expires_at is not None
    assert creations(emulator) == 0
    assert real_rt.store.list_orders() == []
    found = real_rt.store.get_state(CONFIRMATIONS_KEY)
    assert found is not None
    assert outcome.token not in str(found[0])
    assert token_hash(outcome.token or "") in found[0]["tokens"]


def test_min_notional_blocks_without_a_token(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    outcome = submit(real_rt, buy("0.0002"), actor=ACTOR)  # 4 USDT < 5
    assert outcome.status is OutcomeStatus.BLOCKED and outcome.token is None
    assert creations(emulator) == 0


def test_confirmed_market_buy_fills_and_opens_a_protected_position(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    request = buy(stop_loss="18000", take_profit="24000")
    token = preview(real_rt, request).token
    outcome = submit(real_rt, request, actor=ACTOR, confirm=token)

    assert outcome.status is OutcomeStatus.PLACED
    [order] = outcome.orders
    assert order.status is OrderStatus.FILLED  # the emulator fills market orders at once
    assert creations(emulator) == 1
    position = real_rt.store.open_position("BTC/USDT")
    assert position is not None
    assert position.amount == Decimal("0.00999")  # Binance takes the buy fee in BTC
    assert (position.stop_loss, position.take_profit) == (Decimal("18000"), Decimal("24000"))
    free, _ = emulator.balance("BTC", "manual-key")
    assert free == Decimal("0.00999")


def test_a_token_works_once(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    token = preview(real_rt, buy()).token
    submit(real_rt, buy(), actor=ACTOR, confirm=token)
    with pytest.raises(ConfirmationRefused, match="already used") as refused:
        submit(real_rt, buy(), actor=ACTOR, confirm=token)
    assert refused.value.reason == "used"
    assert creations(emulator) == 1
    assert len(real_rt.store.list_orders()) == 1
    assert "CONFIRMATION_USED" in security_reasons(real_rt)


def test_a_wrong_token_places_nothing(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    preview(real_rt, buy())
    with pytest.raises(ConfirmationRefused, match="unknown confirmation token") as refused:
        submit(real_rt, buy(), actor=ACTOR, confirm="AAAABBBBCCCCDDDD")
    assert refused.value.reason == "unknown"
    assert creations(emulator) == 0 and real_rt.store.list_orders() == []
    assert "CONFIRMATION_UNKNOWN" in security_reasons(real_rt)


def test_an_expired_token_places_nothing(
    real_rt: Runtime, emulator: BinanceEmulator, clock: Clock
) -> None:
    token = preview(real_rt, buy(), clock).token
    clock.tick(60)  # the default lifetime is 60 s
    with pytest.raises(ConfirmationRefused, match="expired") as refused:
        submit(real_rt, buy(), actor=ACTOR, confirm=token, now=clock)
    assert refused.value.reason == "expired"
    assert creations(emulator) == 0 and real_rt.store.list_orders() == []


def test_a_token_just_before_expiry_still_works(
    real_rt: Runtime, emulator: BinanceEmulator, clock: Clock
) -> None:
    token = preview(real_rt, buy(), clock).token
    clock.tick(59.9)
    outcome = submit(real_rt, buy(), actor=ACTOR, confirm=token, now=clock)
    assert outcome.status is OutcomeStatus.PLACED and creations(emulator) == 1


@pytest.mark.parametrize(
    "other",
    [
        {"amount": "0.02"},
        {"side": "sell"},
        {"amount_in": "quote", "amount": "1"},
        {"type": "limit", "price": "19999"},
        {"stop_loss": "19000"},
    ],
)
def test_a_token_for_other_parameters_places_nothing_and_is_void(
    real_rt: Runtime, emulator: BinanceEmulator, other: dict[str, str]
) -> None:
    token = preview(real_rt, buy()).token
    with pytest.raises(ConfirmationRefused, match="different action") as refused:
        submit(real_rt, buy(**other), actor=ACTOR, confirm=token)
    assert refused.value.reason == "mismatch"
    with pytest.raises(ConfirmationRefused, match="already used"):
        submit(real_rt, buy(), actor=ACTOR, confirm=token)
    assert creations(emulator) == 0 and real_rt.store.list_orders() == []
    assert "CONFIRMATION_MISMATCH" in security_reasons(real_rt)


def test_a_token_for_another_request_id_places_nothing(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    token = preview(real_rt, buy(request_id="first")).token
    with pytest.raises(ConfirmationRefused, match="different action"):
        submit(real_rt, buy(request_id="second"), actor=ACTOR, confirm=token)
    assert creations(emulator) == 0


def test_a_token_for_an_order_cannot_close(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    token = preview(real_rt, buy()).token
    with pytest.raises(ConfirmationRefused):
        submit(real_rt, CloseAllRequest(), actor=ACTOR, confirm=token)
    assert creations(emulator) == 0


def test_confirming_by_token_alone_runs_the_previewed_action(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    token = preview(real_rt, buy(request_id="tg-1")).token
    outcome = confirm_token(real_rt, token or "", actor="telegram:1:me")
    assert outcome.status is OutcomeStatus.PLACED and outcome.request_id == "tg-1"
    assert creations(emulator) == 1


def test_tokens_are_typed_loosely_but_matched_exactly(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    token = preview(real_rt, buy()).token or ""
    typed = "-".join(token[i : i + 4] for i in range(0, 16, 4)).lower()
    assert submit(real_rt, buy(), actor=ACTOR, confirm=typed).status is OutcomeStatus.PLACED


def test_a_price_jump_between_preview_and_confirm_places_nothing(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    token = preview(real_rt, buy()).token
    emulator.advance(2)  # 20000 -> 22200
    with pytest.raises(ConfirmationRefused, match="moved from 20000 to 22200"):
        submit(real_rt, buy(), actor=ACTOR, confirm=token)
    assert creations(emulator) == 0


def test_request_id_is_idempotent_across_confirmations(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    request = buy(request_id="once")
    submit(real_rt, request, actor=ACTOR, confirm=preview(real_rt, request).token)
    again = submit(real_rt, request, actor=ACTOR)  # no token needed: nothing new to place
    assert again.status is OutcomeStatus.ALREADY_DONE and again.token is None
    with pytest.raises(RequestIdConflict):
        submit(real_rt, buy("0.02", request_id="once"), actor=ACTOR)
    assert creations(emulator) == 1


def _hold(real_rt: Runtime, amount: str = "0.05") -> None:
    token = preview(real_rt, buy(amount)).token
    submit(real_rt, buy(amount), actor=ACTOR, confirm=token)


def test_close_takes_two_steps(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    _hold(real_rt)  # 0.04995 BTC after the fee
    close = ClosePositionRequest(symbol="BTC/USDT", fraction=Decimal("0.5"))
    outcome = preview(real_rt, close)
    assert outcome.legs[0].amount == Decimal("0.02497")
    assert creations(emulator) == 1

    with pytest.raises(ConfirmationRefused):
        submit(real_rt, ClosePositionRequest(symbol="BTC/USDT"), actor=ACTOR, confirm=outcome.token)
    outcome = preview(real_rt, close)
    done = submit(real_rt, close, actor=ACTOR, confirm=outcome.token)
    [order] = done.orders
    assert (order.side, order.type, order.status) == (
        Side.SELL,
        OrderType.MARKET,
        OrderStatus.FILLED,
    )
    position = real_rt.store.open_position("BTC/USDT")
    assert position is not None and position.amount == Decimal("0.02498")
    assert creations(emulator) == 2


def test_close_all_takes_two_steps_and_is_bound_to_the_previewed_positions(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    _hold(real_rt)
    token = preview(real_rt, CloseAllRequest()).token
    # the position changes between preview and confirmation: refuse, place nothing
    partial = ClosePositionRequest(symbol="BTC/USDT", amount=Decimal("0.01"))
    submit(real_rt, partial, actor=ACTOR, confirm=preview(real_rt, partial).token)
    with pytest.raises(ConfirmationRefused, match="changed since the preview"):
        submit(real_rt, CloseAllRequest(), actor=ACTOR, confirm=token)
    assert creations(emulator) == 2

    outcome = preview(real_rt, CloseAllRequest())
    assert [leg.amount for leg in outcome.legs] == [Decimal("0.03995")]
    done = submit(real_rt, CloseAllRequest(), actor=ACTOR, confirm=outcome.token)
    assert [o.status for o in done.orders] == [OrderStatus.FILLED]
    assert real_rt.store.list_positions(status=PositionStatus.OPEN) == []
    assert creations(emulator) == 3


def test_cancel_needs_no_token(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    request = buy(type="limit", price="18000")
    order = submit(real_rt, request, actor=ACTOR, confirm=preview(real_rt, request).token).orders[0]
    assert order.status is OrderStatus.OPEN
    assert emulator.balance("USDT", "manual-key")[1] == Decimal("180")  # 0.01 x 18000

    result = cancel_order(real_rt, order.client_order_id, actor=ACTOR)
    assert result.canceled
    assert emulator.balance("USDT", "manual-key") == (Decimal("10000"), Decimal("0"))
    stored = real_rt.store.get_order(order.client_order_id)
    assert stored is not None and stored.status is OrderStatus.CANCELED


def test_paper_reset_is_refused_in_real_mode(real_rt: Runtime) -> None:
    with pytest.raises(SecurityError, match="DEMO only"):
        reset_paper_account(real_rt.store, real_rt.settings, balance=Decimal("1"), actor=ACTOR)
    assert "PAPER_RESET_REFUSED" in security_reasons(real_rt)
    assert real_rt.store.get_state("paper_account") is None


def test_concurrent_confirmations_place_once(real_rt: Runtime, emulator: BinanceEmulator) -> None:
    token = preview(real_rt, buy()).token
    results: list[str] = []

    def confirm() -> None:
        with trading_mode(TradingMode.REAL):
            try:
                outcome = submit(real_rt, buy(), actor=ACTOR, confirm=token)
                results.append(outcome.status.value)
            except ConfirmationRefused as exc:
                results.append(exc.reason)

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["PLACED", "used", "used", "used"]
    assert creations(emulator) == 1


def test_a_lost_response_is_resolved_by_sync_never_resent(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    request = buy(request_id="lost-1")
    token = preview(real_rt, request).token
    emulator.faults.add(FaultRule(kind="drop", path=ORDER_PATH, method="POST", execute=True))
    outcome = submit(real_rt, request, actor=ACTOR, confirm=token)
    assert outcome.status is OutcomeStatus.PLACED and outcome.errors  # sent; the reply was lost
    assert creations(emulator) == 1
    [intent] = real_rt.store.list_orders()
    assert intent.status is OrderStatus.NEW

    again = submit(real_rt, request, actor=ACTOR)  # a REAL preview never sends
    assert again.status is OutcomeStatus.ALREADY_DONE and again.token is None
    assert "unconfirmed intent" in again.message
    assert creations(emulator) == 1

    sync_orders(real_rt.store, real_rt.exchange)
    resolved = real_rt.store.get_order(intent.client_order_id)
    assert resolved is not None and resolved.status is OrderStatus.FILLED
    assert submit(real_rt, request, actor=ACTOR).orders[0].status is OrderStatus.FILLED
    assert creations(emulator) == 1
