"""The demo's settings: a DEMO paper-trading session on real replayed candles when
../shared/data is there, else on the built-in simulated market, in a fresh data dir."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.mode import TradingMode

REPLAY_WATCHLIST = [
    {"symbol": "BTC/USDT", "timeframe": "1h", "trade_amount_usd": "1000"},
    {"symbol": "ETH/BTC", "timeframe": "5m", "trade_amount_usd": "1000"},
]
SIMULATED_WATCHLIST = [
    {"symbol": "BTC/USDT", "timeframe": "1h", "trade_amount_usd": "1000"},
    {"symbol": "ETH/USDT", "timeframe": "1h", "trade_amount_usd": "1000"},
    {"symbol": "SOL/USDT", "timeframe": "1h", "trade_amount_usd": "500"},
]


def default_replay_dir() -> Path | None:
    """../shared/data/ohlcv next to the checkout, if present."""
    here = Path(__file__).resolve().parents[2]
    candidate = (here / ".." / "shared" / "data" / "ohlcv").resolve()
    return candidate if candidate.is_dir() else None


def fresh_run_dir(base: Path) -> Path:
    """Each demo starts from its own empty books: nothing earlier is deleted or reused."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = base / "demo-runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def demo_settings(
    *,
    data_dir: Path,
    market: Literal["auto", "replay", "simulated"] = "auto",
    replay_dir: Path | None = None,
) -> KestrelSettings:
    replay_dir = replay_dir or default_replay_dir()
    use_replay = market == "replay" or (market == "auto" and replay_dir is not None)
    if use_replay and replay_dir is None:
        raise FileNotFoundError(
            "replay needs candle files: pass --replay-dir or place ../shared/data/ohlcv"
        )
    paper: dict[str, Any] = {
        "starting_balance": Decimal("10000"),
        "quote_currency": "USDT",
        "market_data": "replay" if use_replay else "simulated",
    }
    if use_replay:
        paper["replay_dir"] = replay_dir
        paper["extra_balances"] = {"BTC": Decimal("0.5")}
    return load_settings(
        mode=TradingMode.DEMO,
        data_dir=data_dir,
        store_uri=None,
        watchlist=REPLAY_WATCHLIST if use_replay else SIMULATED_WATCHLIST,
        paper=paper,
        risk={"stale_after_candles": 2, "min_confidence": 0.55},
    )
