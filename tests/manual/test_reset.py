"""DEMO paper-account reset: everything closed out and archived, nothing deleted, ids go on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kestrel.errors import ManualError
from kestrel.exchange.paper_state import PaperAccount, PaperBook
from kestrel.manual import (
    OutcomeStatus,
    PlaceOrderRequest,
    list_archives,
    reset_paper_account,
    submit,
)
from kestrel.models import EventType, OrderStatus, PositionStatus, StatusSource
from kestrel.runtime import Runtime
from tests.manual.conftest import advance

ACTOR = "pytest"


def buy(symbol: str = "BTC/USDT", **kw: str) -> PlaceOrderRequest:
    return PlaceOrderRequest.model_validate(
        {"symbol": symbol, "side": "buy", "amount": "100", "amount_in": "quote", **kw}
    )


def account(rt: Runtime) -> PaperAccount:
    found = rt.store.get_state("paper_account")
    assert found is not None
    return PaperAccount.model_validate(found[0])


def price(rt: Runtime, symbol: str) -> Decimal:
    return Decimal(str(rt.exchange.fetch_ticker(symbol)["last"]))


def test_reset_archives_books_closes_out_and_restarts(demo_rt: Runtime) -> None:
    submit(demo_rt, buy(), actor=ACTOR)
    advance(demo_rt)  # BTC position open (0.00496 @ 20150)
    resting_request = buy("ETH/USDT", type="limit", price="1000", stop_loss="900")
    resting = submit(demo_rt, resting_request, actor=ACTOR).orders[0]
    before = account(demo_rt)
    trades_before = demo_rt.exchange.fetch_my_trades()
    assert len(trades_before) == 1

    outcome = reset_paper_account(
        demo_rt.store,
        demo_rt.settings,
        balance=Decimal("2500"),
        actor=ACTOR,
        reason="fresh start",
        price_of=lambda s: price(demo_rt, s),
    )

    # the new account: the chosen balance, no orders, id counters continue
    after = account(demo_rt)
    assert after.balances == {"USDT": Decimal("2500")}
    assert after.orders == {} and after.epoch == before.epoch + 1
    assert demo_rt.exchange.fetch_orders() == [] and demo_rt.exchange.fetch_my_trades() == []
    assert (after.next_order_id, after.next_trade_id) == (
        before.next_order_id,
        before.next_trade_id,
    )
    # the old books, whole, in the archive
    archive = demo_rt.store.get_state(outcome.archive_key)
    assert archive is not None
    doc = archive[0]
    archived = PaperAccount.model_validate(doc["paper_account"])
    assert archived.model_dump(exclude={"journal"}) == before.model_dump(exclude={"journal"})
    old_fills = PaperBook(demo_rt.store, before).trades(None)  # the old epoch's rows stay
    assert [t.id for t in old_fills] == [t["id"] for t in trades_before]
    assert [o["client_order_id"] for o in doc["live_orders"]] == [resting.client_order_id]
    assert [p["symbol"] for p in doc["open_positions"]] == ["BTC/USDT"]
    assert doc["open_positions"][0]["amount"] == "0.00495504"  # fee paid in BTC
    assert [a["key"] for a in list_archives(demo_rt.store)] == [outcome.archive_key]
    # orders and positions are closed, not deleted
    order = demo_rt.store.get_order(resting.client_order_id)
    assert order is not None
    assert (order.status, order.status_source) == (OrderStatus.CANCELED, StatusSource.PAPER_RESET)
    [position] = demo_rt.store.list_positions()
    assert position.status is PositionStatus.CLOSED and position.amount == 0
    assert position.last_price == Decimal("20200")
    assert len(demo_rt.store.list_orders()) == 2
    assert demo_rt.store.list_fills()  # the fill of the first buy is still there
    # events: the order, the position and the reset itself
    [reset_event] = [
        e
        for e in demo_rt.store.list_events(types=[EventType.SETTINGS_CHANGED])
        if "PAPER_ACCOUNT_RESET" in e.reasons
    ]
    assert reset_event.data["old"] == {c: str(v) for c, v in before.balances.items()}
    assert reset_event.data["old"]["BTC"] == "0.00495504"
    assert reset_event.data["new"] == {"USDT": "2500"}
    assert reset_event.data["archive"] == outcome.archive_key
    closed = [
        e
        for e in demo_rt.store.list_events(types=[EventType.POSITION_CLOSED])
        if "PAPER_ACCOUNT_RESET" in e.reasons
    ]
    assert closed[0].data["written_off"] == "0.00495504"
    # valued at the last price 20200, from the position's own cost basis (kestrel.books.ledger's)
    held = doc["open_positions"][0]
    # (the exact quote paid, `entry_cost`, not the rounded average entry price times the amount)
    assert Decimal(closed[0].data["unrealized_pnl_at_reset"]) == Decimal("20200") * Decimal(
        held["amount"]
    ) - Decimal(held["entry_cost"])
    [canceled] = demo_rt.store.list_events(types=[EventType.ORDER_CANCELED])
    assert canceled.client_order_id == resting.client_order_id
    assert "paper account reset by pytest: fresh start" in canceled.reasons

    # trading resumes on the new account, without id collisions (after the buy cooldown)
    advance(demo_rt, 2)
    again = submit(demo_rt, buy(), actor=ACTOR)
    assert again.status is OutcomeStatus.PLACED
    assert again.orders[0].exchange_order_id == str(before.next_order_id)
    advance(demo_rt)
    assert demo_rt.store.open_position("BTC/USDT") is not None


def test_reset_keeps_or_replaces_extra_balances(demo_rt: Runtime) -> None:
    settings = demo_rt.settings.model_copy(
        update={
            "paper": demo_rt.settings.paper.model_copy(
                update={"extra_balances": {"BTC": Decimal("0.5")}}
            )
        }
    )
    reset_paper_account(demo_rt.store, settings, balance=Decimal("100"), actor=ACTOR)
    assert account(demo_rt).balances == {"BTC": Decimal("0.5"), "USDT": Decimal("100")}
    reset_paper_account(
        demo_rt.store,
        settings,
        balance=Decimal("100"),
        actor=ACTOR,
        extra_balances={"ETH": Decimal("2")},
    )
    assert account(demo_rt).balances == {"ETH": Decimal("2"), "USDT": Decimal("100")}
    assert len(list_archives(demo_rt.store)) == 2


@pytest.mark.parametrize(
    ("balance", "extra", "message"),
    [
        (Decimal("0"), None, "starting balance must be > 0"),
        (Decimal("10"), {"BTC": Decimal("-1")}, "extra balance BTC"),
    ],
)
def test_bad_balances_are_refused(
    demo_rt: Runtime, balance: Decimal, extra: dict[str, Decimal] | None, message: str
) -> None:
    with pytest.raises(ManualError, match=message):
        reset_paper_account(
            demo_rt.store, demo_rt.settings, balance=balance, actor=ACTOR, extra_balances=extra
        )
    assert list_archives(demo_rt.store) == []
