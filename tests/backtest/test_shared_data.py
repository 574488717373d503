"""On the real candles of ../shared/data (or KESTREL_SHARED_DATA): a 5m strategy over
ETH/BTC fills on the 1m file, and the books reconcile."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kestrel.backtest import BacktestSpec, run_backtest
from tests.backtest.helpers import btc_settings

pytestmark = pytest.mark.shared_data


@pytest.fixture
def ohlcv(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("KESTREL_SHARED_DATA")
    if explicit:
        return Path(explicit) / "ohlcv"
    shared: Path = request.getfixturevalue("shared_data_dir")
    return shared / "ohlcv"


def test_real_eth_btc_backtest_reconciles_on_minute_fills(ohlcv: Path, tmp_path: Path) -> None:
    settings = btc_settings(tmp_path / "data")
    spec = BacktestSpec(
        data_dir=ohlcv,
        start=datetime(2018, 1, 21, tzinfo=UTC),
        end=datetime(2018, 1, 21, 3, tzinfo=UTC),
    )
    result = run_backtest(settings, spec, charts=False).result
    assert result.data_source == "replay:ETH_BTC-1m.csv,ETH_BTC-5m.csv"
    assert result.steps == 37 and result.cycles == 36
    assert result.reconciled, result.books
    assert result.errors == []
    assert result.metrics.buy_and_hold_by_symbol["ETH/BTC"] != 0
