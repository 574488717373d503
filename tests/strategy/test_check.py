"""`kestrel strategy check`: built-ins pass the lookahead check, a shift(-1) strategy fails it,
and the warm-up report names the recursive indicators."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from kestrel.models import CandleSeries
from kestrel.strategy.builtin import builtin_strategies
from kestrel.strategy.check import check_strategy
from kestrel.strategy.profiles import BUILTIN_PROFILES
from tests.strategy.conftest import random_walk
from tests.strategy.leaky import Momentum, PeekStrategy


@pytest.mark.parametrize("name", list(BUILTIN_PROFILES))
def test_builtin_strategies_pass_the_lookahead_check(name: str) -> None:
    strategy = builtin_strategies()[name]
    report = check_strategy(strategy, random_walk(400, seed=11), points=12, seed=5)
    assert report.ok, report.lookahead.mismatches[:3]
    assert len(report.lookahead.points) == 12


def test_a_strategy_that_reads_the_next_candle_fails(walk: CandleSeries) -> None:
    report = check_strategy(PeekStrategy(), walk, points=20, seed=1)
    assert not report.ok
    what = {m.what for m in report.lookahead.mismatches}
    assert "indicator next_return" in what and "decision" in what
    first = next(m for m in report.lookahead.mismatches if m.what == "indicator next_return")
    assert first.truncated == "nan"


def test_an_honest_plugin_passes(walk: CandleSeries) -> None:
    assert check_strategy(Momentum(), walk, points=30).ok


def test_warmup_report_names_history_dependent_indicators(walk: CandleSeries) -> None:
    report = check_strategy(builtin_strategies()["SWING/CONSERVATIVE"], walk, points=10)
    warm = report.warmup
    named = {item.column for item in warm.items}
    assert {"ema_slow", "rsi", "atr", "macd"} <= named  # recursive: depend on their start
    assert not named & {"sma_fast", "sma_slow", "bb_mid", "bb_upper", "volume_sma"}  # windows
    assert warm.history == 51 and warm.tested == [51, 102, 204, 408]
    assert all(item.max_rel_diff > 1e-6 for item in warm.items)
    assert check_strategy(Momentum(), walk, points=10).warmup.items == []


def test_too_few_candles_is_a_clear_error() -> None:
    from kestrel.errors import InvalidMarketData

    with pytest.raises(InvalidMarketData, match="the check needs more than the strategy's warm-up"):
        check_strategy(builtin_strategies()["SWING/CONSERVATIVE"], random_walk(40), points=5)


def _write_csv(path: Path, series: CandleSeries) -> Path:
    lines = ["timestamp,open,high,low,close,volume"] + [
        f"{c.timestamp},{c.open},{c.high},{c.low},{c.close},{c.volume}" for c in series.candles
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_check_passes_builtins_and_fails_a_leak(tmp_path: Path, walk: CandleSeries) -> None:
    data = _write_csv(tmp_path / "BTC_USDT-1h.csv", walk)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["strategy", "check", "--strategy", "intraday", "--data", str(data), "--points", "8"]
    )
    assert ok.exit_code == 0, ok.output
    assert "lookahead: OK (8 random cut points agree with the full run)" in ok.output
    assert "warm-up: rsi is off by up to" in ok.output
    leak = runner.invoke(
        app,
        ["strategy", "check", "--strategy", "tests.strategy.leaky:PeekStrategy",
         "--data", str(tmp_path), "--symbol", "BTC/USDT", "--points", "8"],
    )  # fmt: skip
    assert leak.exit_code == 1, leak.output
    assert "lookahead: FAILED at 8 of 8 cut points" in leak.output
    bad = runner.invoke(app, ["strategy", "check", "--strategy", "nope:Nope", "--data", str(data)])
    assert bad.exit_code == 2 and "cannot import nope" in bad.output


@pytest.mark.shared_data
def test_builtins_pass_on_real_candles(shared_data_dir: Path) -> None:
    from kestrel.market.csvfile import read_candle_csv

    candles = read_candle_csv(shared_data_dir / "ohlcv" / "ETH_BTC-5m.csv")[:1500]
    series = CandleSeries(symbol="ETH/BTC", timeframe="5m", candles=candles, source="shared")
    for strategy in builtin_strategies().values():
        assert check_strategy(strategy, series, points=10, seed=2).ok, strategy.name
