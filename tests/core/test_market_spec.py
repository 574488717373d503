"""MarketSpec: precision through ccxt's own machinery, with an explicit direction per use, and
the one "is this order big enough" rule.

Binance's markets are parsed by the real ccxt client from exchangeInfo entries; the expected
quantities and prices are the ones ccxt's static request fixtures say it sends to Binance
(shared/data/ccxt-static/request/binance.json)."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.exchange.ccxt_exchange import CcxtExchange, market_spec
from kestrel.execution.orders import prepare_intent
from kestrel.mode import TradingMode
from kestrel.models import MarketSpec, Order, OrderRole, OrderType, Side, SizeProblemCode
from kestrel.money import PrecisionMode, Rounding

D = Decimal


def _filters(tick: str, step: str, min_notional: str) -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000", "stepSize": step},
        {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": True},
    ]


# Binance's spot filters for the pairs of the createOrder fixtures (tick / step / notional).
BINANCE_FILTERS = {
    "BTC/USDT": ("BTCUSDT", "BTC", _filters("0.01", "0.00001", "5")),
    "LTC/USDT": ("LTCUSDT", "LTC", _filters("0.01", "0.001", "5")),
    "SOL/USDT": ("SOLUSDT", "SOL", _filters("0.01", "0.001", "5")),
}


def binance() -> Any:
    """A real ccxt binance client whose markets come from exchangeInfo entries (no network)."""
    client = ccxt.binance()
    client.options["crossMarginPairsData"] = []
    client.options["isolatedMarginPairsData"] = []
    markets = [
        client.parse_market(
            {
                "symbol": market_id,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": "USDT",
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET", "STOP_LOSS_LIMIT"],
                "isSpotTradingAllowed": True,
                "filters": filters,
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
        )
        for market_id, base, filters in BINANCE_FILTERS.values()
    ]
    client.set_markets(markets)
    return client


def _ancestor_with(relative: str) -> Path:
    """shared/data sits next to the checkout (main) or above it (a worktree)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / relative).exists():
            return parent / relative
    pytest.skip(f"{relative} not found above {here}")


def spot_limit_fixtures() -> list[tuple[str, str, float, float, str, str]]:
    """(symbol, side, amount, price, quantity sent, price sent) of ccxt's spot limit orders."""
    path = _ancestor_with("shared/data/ccxt-static/request/binance.json")
    cases = []
    for case in json.loads(path.read_text())["methods"]["createOrder"]:
        symbol, kind, side, amount, price = (*case["input"], None)[:5]
        if symbol not in BINANCE_FILTERS or kind != "limit" or price is None:
            continue
        sent = dict(part.split("=", 1) for part in case["output"].split("&"))
        cases.append((symbol, side, amount, price, sent["quantity"], sent["price"]))
    assert len(cases) >= 10, "the fixture file no longer has its spot limit orders"
    return cases


def test_binance_orders_round_as_ccxt_sends_them_to_binance() -> None:
    exchange = CcxtExchange(binance())
    for symbol, side, amount, price, quantity, sent_price in spot_limit_fixtures():
        spec = market_spec(exchange, symbol)
        assert spec.precision_mode is PrecisionMode.TICK_SIZE
        assert spec.amount_to_precision(D(str(amount))) == D(quantity), (symbol, amount)
        assert spec.limit_price(side, D(str(price))) == D(sent_price), (symbol, side, price)


def test_weird_fixture_amounts_truncate_like_ccxt() -> None:
    """'spot order with weird price/amount': 0.4234234234 LTC @ 55.324242343 -> 0.423 @ 55.32."""
    client = binance()
    spec = market_spec(CcxtExchange(client), "LTC/USDT")
    assert spec.amount_to_precision(D("0.4234234234")) == D("0.423")
    assert str(spec.amount_to_precision(D("0.4234234234"))) == client.amount_to_precision(
        "LTC/USDT", "0.4234234234"
    )
    assert spec.limit_price("buy", D("55.324242343")) == D("55.32")
    assert spec.limit_price("sell", D("55.324242343")) == D("55.33")
    assert (spec.min_amount, spec.min_notional) == (D("0.001"), D("5"))


def test_a_buy_limit_never_rounds_up() -> None:
    """ccxt's price_to_precision rounds to the nearest tick: 97.126 -> 97.13, more than asked."""
    client = binance()
    assert client.price_to_precision("LTC/USDT", "97.126") == "97.13"
    spec = market_spec(CcxtExchange(client), "LTC/USDT")
    assert spec.limit_price("buy", D("97.126")) == D("97.12")
    assert spec.limit_price("sell", D("97.121")) == D("97.13")
    assert spec.stop_price("sell", D("97.121")) == D("97.13")  # toward the market
    assert spec.stop_price("buy", D("97.129")) == D("97.12")


def bitfinex() -> Any:
    """A real ccxt bitfinex client (precisionMode SIGNIFICANT_DIGITS) with its BTC/USD market
    as its parser shapes it (amount 8, price 5 significant digits; no network)."""
    client = ccxt.bitfinex()
    client.set_markets(
        [
            {
                "id": "tBTCUSD",
                "symbol": "BTC/USD",
                "base": "BTC",
                "quote": "USD",
                "spot": True,
                "type": "spot",
                "active": True,
                "precision": {"amount": 8, "price": 5},
                "limits": {"amount": {"min": 0.00006}, "cost": {"min": None}},
            }
        ]
    )
    return client


def test_significant_digits_market_counts_digits_not_decimals() -> None:
    """bitfinex counts price precision in significant digits (5): 97126.37 is 97126, not a
    price with 5 decimals (what the old step conversion made of it)."""
    client = bitfinex()
    assert client.precisionMode == PrecisionMode.SIGNIFICANT_DIGITS
    spec = market_spec(client, "BTC/USD")
    assert spec.precision_mode is PrecisionMode.SIGNIFICANT_DIGITS
    assert spec.limit_price("buy", D("97126.37")) == D("97126")
    assert spec.limit_price("sell", D("97126.37")) == D("97127")
    assert spec.limit_price("sell", D("99999.5")) == D("100000")
    assert spec.amount_to_precision(D("0.123456789")) == D("0.12345678")
    assert str(spec.amount_to_precision(D("0.123456789"))) == client.amount_to_precision(
        "BTC/USD", "0.123456789"
    )
    with pytest.raises(ValueError, match="no fixed step"):
        _ = spec.price_tick


def test_decimal_places_market() -> None:
    spec = MarketSpec(
        symbol="X/USD",
        base="X",
        quote="USD",
        precision_mode=PrecisionMode.DECIMAL_PLACES,
        amount_precision=D(3),
        price_precision=D(2),
        min_notional=D("1"),
    )
    assert spec.limit_price("buy", D("97.126")) == D("97.12")
    assert spec.limit_price("sell", D("97.121")) == D("97.13")
    assert spec.amount_to_precision(D("1.23456")) == D("1.234")
    assert (spec.amount_step, spec.price_tick) == (D("0.001"), D("0.01"))
    whole_units = spec.model_copy(update={"amount_precision": D(0)})  # 0 places: whole coins
    assert whole_units.amount_to_precision(D("3.7")) == 3 and whole_units.amount_step == 1
    with pytest.raises(ValueError, match="whole number of digits"):
        MarketSpec.model_validate(
            {**spec.model_dump(), "amount_precision": D("0.001"), "precision_mode": 2}
        )


def test_precision_modes_are_ccxts_and_its_decimal_context_does_not_leak() -> None:
    from ccxt.base import decimal_to_precision as ccxt_precision

    assert PrecisionMode.DECIMAL_PLACES == ccxt_precision.DECIMAL_PLACES
    assert PrecisionMode.SIGNIFICANT_DIGITS == ccxt_precision.SIGNIFICANT_DIGITS
    assert PrecisionMode.TICK_SIZE == ccxt_precision.TICK_SIZE
    with decimal.localcontext() as context:
        context.rounding = decimal.ROUND_HALF_EVEN
        LTC.limit_price("buy", D("97.126"))  # ccxt sets ROUND_HALF_UP on the context it runs in
        assert decimal.getcontext().rounding == decimal.ROUND_HALF_EVEN


def test_from_ccxt_reads_precision_in_the_exchanges_mode() -> None:
    market = {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "precision": {"amount": 1e-05, "price": 0.01},
        "limits": {"amount": {"min": 1e-05}, "cost": {"min": 5.0}},
    }
    ticks = MarketSpec.from_ccxt(market, precision_mode=PrecisionMode.TICK_SIZE)
    assert (ticks.amount_step, ticks.price_tick) == (D("0.00001"), D("0.01"))
    digits = {**market, "precision": {"amount": 5, "price": 2}}
    places = MarketSpec.from_ccxt(digits, precision_mode=PrecisionMode.DECIMAL_PLACES)
    assert (places.amount_step, places.price_tick) == (D("0.00001"), D("0.01"))


# -- the size rule ----------------------------------------------------------------------------

LTC = MarketSpec(
    symbol="LTC/USDT",
    base="LTC",
    quote="USDT",
    amount_precision=D("0.001"),
    price_precision=D("0.01"),
    min_amount=D("0.001"),
    min_notional=D("5"),
)


def test_size_problem_names_the_reason_with_a_code() -> None:
    below_amount = LTC.size_problem(D("0.0009"), D("100"))
    assert below_amount is not None and below_amount.code is SizeProblemCode.BELOW_MIN_AMOUNT
    assert D(below_amount.values["rounded"]) == 0
    below_value = LTC.size_problem(D("0.0499"), D("100"))  # sent as 0.049 -> 4.9 USDT
    assert below_value is not None and below_value.code is SizeProblemCode.BELOW_MIN_NOTIONAL
    assert D(below_value.values["notional"]) == D("4.9")
    assert LTC.size_problem(D("0.05"), D("100")) is None
    assert LTC.is_dust(D("0.0499"), D("100")) and LTC.is_tradable(D("0.05"), D("100"))


@given(
    amount=st.decimals(min_value=0, max_value=1000, places=6),
    price=st.decimals(min_value=D("0.01"), max_value=100000, places=2),
)
def test_what_the_size_rule_accepts_the_exchange_accepts(amount: Decimal, price: Decimal) -> None:
    """Accepted means: after truncation the amount is on the grid, >= the minimum amount and
    worth >= the minimum notional; refused means one of those fails."""
    sent = LTC.amount_to_precision(amount)
    assert sent <= amount and amount - sent < D("0.001")
    ok = sent > 0 and sent >= LTC.min_amount and sent * price >= LTC.min_notional
    assert (LTC.size_problem(amount, price) is None) == ok


@given(
    value=st.decimals(min_value=D("0.00000001"), max_value=10**7, places=8),
    mode=st.sampled_from(list(PrecisionMode)),
)
def test_rounding_goes_the_way_it_is_told_and_at_most_one_step(
    value: Decimal, mode: PrecisionMode
) -> None:
    precision = D("0.05") if mode is PrecisionMode.TICK_SIZE else D(4)
    spec = LTC.model_copy(update={"precision_mode": mode, "price_precision": precision})
    down = spec.price_to_precision(value, Rounding.DOWN)
    up = spec.price_to_precision(value, Rounding.UP)
    assert down <= value <= up
    assert spec.price_to_precision(down, Rounding.UP) == down  # on the grid already
    assert spec.price_to_precision(up, Rounding.DOWN) == up
    if down != value:
        assert spec.price_to_precision(down + (up - down) / 2, Rounding.DOWN) == down


def test_placement_rounds_a_significant_digits_market_by_its_digits() -> None:
    """prepare_intent on a real ccxt bitfinex client: the buy limit keeps 5 significant
    digits, rounded down, and the amount 8 (the old code read both as decimal places)."""
    buy = Order(
        client_order_id="sig-digits-1",
        mode=TradingMode.REAL,
        exchange="bitfinex",
        symbol="BTC/USD",
        side=Side.BUY,
        type=OrderType.LIMIT,
        role=OrderRole.PRIMARY,
        amount=D("0.123456789"),
        price=D("97126.37"),
    )
    prepared, problem = prepare_intent(bitfinex(), buy)
    assert problem is None
    assert (prepared.amount, prepared.price) == (D("0.12345678"), D("97126"))
