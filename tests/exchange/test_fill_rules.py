"""FillRules on their own, as a backtest uses them: properties over random candles and orders."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.config.settings import PaperSettings
from kestrel.exchange.paper_rules import (
    Bar,
    FeeRule,
    FillRules,
    OrderTerms,
    ParticipationCap,
    SlippageModel,
    TriggerRule,
)

TICK, STEP = Decimal("0.01"), Decimal("0.00001")
prices = st.decimals(min_value=Decimal("100"), max_value=Decimal("50000"), places=2)
amounts = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("50"), places=5)


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    a, b, c = sorted([draw(prices), draw(prices), draw(prices)])
    open_ = draw(st.sampled_from([a, b, c]))
    volume = draw(st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=3))
    return Bar(0, open_, c, a, volume)


@settings(max_examples=200, deadline=None)
@given(bar=bars(), amount=amounts, side=st.sampled_from(["buy", "sell"]))
def test_a_market_order_is_never_better_than_the_open_nor_beyond_the_candle(
    bar: Bar, amount: Decimal, side: str
) -> None:
    rules = FillRules()
    order = OrderTerms(kind="market", side=side, remaining=amount)  # type: ignore[arg-type]
    room = rules.participation.room(bar)
    got = rules.execute(order, bar, TICK, STEP, room)
    if got is None:
        assert room is not None and room < STEP  # nothing traded: no room for a single step
        return
    assert Decimal(0) < got.amount <= min(amount, room if room is not None else amount)
    if side == "buy":
        assert bar.open <= got.price <= bar.high + TICK
    else:
        assert bar.low - TICK <= got.price <= bar.open


@settings(max_examples=200, deadline=None)
@given(bar=bars(), limit=prices, side=st.sampled_from(["buy", "sell"]))
def test_a_resting_limit_fills_at_its_price_only_when_traded_through(
    bar: Bar, limit: Decimal, side: str
) -> None:
    rules = FillRules(participation=ParticipationCap(fraction=None))
    order = OrderTerms(kind="limit", side=side, remaining=Decimal(1), limit=limit, fresh=False)  # type: ignore[arg-type]
    got = rules.execute(order, bar, TICK, STEP, None)
    through = bar.low < limit if side == "buy" else bar.high > limit
    assert (got is not None) == through
    if got is not None:
        assert (got.price, got.liquidity) == (limit, "maker")


def test_touch_is_kinder_and_only_by_choice() -> None:
    bar = Bar(0, Decimal(105), Decimal(110), Decimal(100), Decimal(10))
    assert not TriggerRule().limit_reached("buy", Decimal(100), bar)
    assert TriggerRule(limit_fill="touch").limit_reached("buy", Decimal(100), bar)


@settings(max_examples=200, deadline=None)
@given(bar=bars(), stop=prices)
def test_a_sell_stop_fills_no_better_than_the_stop_or_a_worse_open(bar: Bar, stop: Decimal) -> None:
    rules = FillRules(participation=ParticipationCap(fraction=None))
    order = OrderTerms(kind="stop_market", side="sell", remaining=Decimal(1), stop=stop)
    got = rules.execute(order, bar, TICK, STEP, None)
    if bar.low > stop:
        assert got is None
        return
    assert got is not None and got.triggered
    assert got.price <= min(stop, bar.open)


def test_fees_are_charged_in_binances_currency() -> None:
    fees = FeeRule(maker=Decimal("0.001"), taker=Decimal("0.002"))
    buy = fees.charge("buy", Decimal(2), Decimal(100), "taker", "BTC", "USDT")
    sell = fees.charge("sell", Decimal(2), Decimal(100), "maker", "BTC", "USDT")
    assert (buy.cost, buy.currency, buy.rate) == (Decimal("0.004"), "BTC", Decimal("0.002"))
    assert (sell.cost, sell.currency, sell.rate) == (Decimal("0.200"), "USDT", Decimal("0.001"))
    bnb = fees.model_copy(update={"mode": "bnb", "bnb_prices": {"USDT": Decimal(400)}})
    paid = bnb.charge("sell", Decimal(2), Decimal(100), "maker", "BTC", "USDT", Decimal(1))
    # 200 USDT x 0.1% x 75% / 400 = 0.000375 BNB
    assert (paid.cost, paid.currency, paid.bnb_price) == (Decimal("0.000375"), "BNB", 400)
    short = bnb.charge("sell", Decimal(2), Decimal(100), "maker", "BTC", "USDT", Decimal(0))
    assert short.currency == "USDT"  # not enough BNB: the standard fee
    on_bnb_pair = bnb.charge("buy", Decimal(1), Decimal(600), "taker", "BNB", "USDT", Decimal(1))
    assert (on_bnb_pair.currency, on_bnb_pair.bnb_price) == ("BNB", Decimal(600))


def test_rules_come_from_the_paper_settings() -> None:
    rules = FillRules.from_settings(
        PaperSettings(
            limit_fill="touch",
            participation_cap=Decimal("0.05"),
            slippage_bps=Decimal(3),
            slippage_impact=Decimal(2),
            taker_fee=Decimal("0.002"),
            fee_mode="bnb",
        )
    )
    assert rules.trigger == TriggerRule(limit_fill="touch")
    assert rules.participation == ParticipationCap(fraction=Decimal("0.05"))
    assert rules.slippage == SlippageModel(spread_bps=Decimal(3), impact=Decimal(2))
    assert (rules.fees.taker, rules.fees.mode) == (Decimal("0.002"), "bnb")
