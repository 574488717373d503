"""Settings and data shared by the backtest tests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from kestrel.backtest import BacktestSpec
from kestrel.config.settings import KestrelSettings, load_settings
from tests.backtest.fixtures import sine_candles, write_csv

WARMUP = 100
SYMBOL = "ETH/BTC"


def sine_folder(root: Path, steps: int = 120, *, warmup: int = WARMUP) -> Path:
    """`synthetic/ETH_BTC-5m.csv`: warm-up plus `steps` candles of a sine wave."""
    folder = root / "synthetic"
    write_csv(folder, SYMBOL, "5m", sine_candles(warmup + steps, "5m"))
    return folder


def btc_settings(data_dir: Path, **extra: Any) -> KestrelSettings:
    """An ETH/BTC account in BTC (no BTC/USD price in the data). The daily loss limit is off
    so that the runs' numbers do not depend on it; with it on it is measured in BTC
    (tests/risk/test_daily_other_currency.py)."""
    fields: dict[str, Any] = {
        "watchlist": [
            {
                "symbol": SYMBOL,
                "timeframe": "5m",
                "strategy": "SCALP/AGGRESSIVE",
                "stake_amount": Decimal("0.05"),
                "stake_currency": "BTC",
            }
        ],
        "paper": {"quote_currency": "BTC", "starting_balance": Decimal("1")},
        "risk": {"stale_after_candles": 2, "min_confidence": 0.5},
        "trading": {"gates": {"daily_loss_limit_pct": None}},
        **extra,
    }
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        store_uri=None,
        **fields,
    )


def spec(folder: Path, **extra: Any) -> BacktestSpec:
    return BacktestSpec(data_dir=folder, warmup=extra.pop("warmup", WARMUP), **extra)
