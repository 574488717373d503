from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from kestrel.errors import InvalidTransition
from kestrel.ids import client_order_id, cycle_id, installation_id
from kestrel.mode import TradingMode
from kestrel.models import (
    Candle,
    CandleSeries,
    MarketSpec,
    Order,
    OrderRole,
    OrderStatus,
    check_transition,
)
from kestrel.money import PrecisionMode, round_down_to_step, to_decimal
from kestrel.store import SQLiteStore


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_candles_are_rejected(bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        Candle(timestamp=0, open=1, high=2, low=0.5, close=bad, volume=1)


def test_inconsistent_candle_is_rejected() -> None:
    with pytest.raises(ValidationError, match="inconsistent"):
        Candle(timestamp=0, open=1, high=0.9, low=0.5, close=1, volume=1)


def test_series_must_increase() -> None:
    candle = Candle(timestamp=60_000, open=1, high=1, low=1, close=1, volume=0)
    with pytest.raises(ValidationError, match="increase"):
        CandleSeries(symbol="A/B", timeframe="1m", candles=[candle, candle], source="t")


def test_money_helpers_are_exact() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert round_down_to_step(Decimal("0.123456789"), Decimal("0.00001")) == Decimal("0.12345")
    with pytest.raises(ValueError):
        to_decimal("nan")


def test_client_order_ids_are_deterministic_and_binance_safe() -> None:
    cycle = cycle_id("BTC/USDT", "1h", 1_700_000_000_000)

    def cid(
        mode: TradingMode = TradingMode.DEMO,
        cyc: str = cycle,
        role: OrderRole = OrderRole.PRIMARY,
        installation: str = "a1b2c3d4",
    ) -> str:
        return client_order_id(mode, cyc, "BTC/USDT", role, installation=installation)

    first = cid()
    assert first == cid()
    others = {
        cid(mode=TradingMode.REAL),
        cid(role=OrderRole.STOP_LOSS),
        cid(cyc=cycle + "x"),
        cid(installation="e5f60718"),  # another installation on the same exchange account
    }
    assert first not in others and len(others) == 4
    for each in (first, *others):
        assert len(each) <= 36 and re.fullmatch(r"[A-Za-z0-9_-]+", each), each
    assert "a1b2c3d4" in first  # whose order it is, readable on the exchange


def test_installation_id_is_made_once_and_kept(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", TradingMode.DEMO)
    other = SQLiteStore(tmp_path / "other.sqlite3", TradingMode.DEMO)
    try:
        made = installation_id(store)
        assert re.fullmatch(r"[a-z0-9]{8}", made)
        assert installation_id(store) == made
        assert installation_id(other) != made  # a second installation, its own store
        with pytest.raises(ValueError, match="installation id"):
            client_order_id(TradingMode.DEMO, "c", "BTC/USDT", OrderRole.PRIMARY, installation="")
    finally:
        store.close()
        other.close()


def test_lifecycle_transitions() -> None:
    check_transition(OrderStatus.NEW, OrderStatus.FILLED)
    check_transition(OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
    for final in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED):
        with pytest.raises(InvalidTransition):
            check_transition(final, OrderStatus.OPEN)


def test_order_amount_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        Order(
            client_order_id="x",
            mode=TradingMode.DEMO,
            exchange="paper",
            symbol="A/B",
            side="buy",
            type="market",
            amount=Decimal("0"),
        )


def test_market_spec_from_ccxt_market() -> None:
    spec = MarketSpec.from_ccxt(
        {
            "symbol": "BTC/USDT",
            "base": "BTC",
            "quote": "USDT",
            "precision": {"amount": 1e-05, "price": 0.01},
            "limits": {"amount": {"min": 1e-05}, "cost": {"min": 5.0}},
            "maker": 0.001,
            "taker": 0.001,
        },
        precision_mode=PrecisionMode.TICK_SIZE,
    )
    assert spec.amount_step == Decimal("0.00001")
    assert spec.min_notional == Decimal("5.0")
