"""One trading cycle over 10 symbols: through Prefect (flow + tasks) vs the same kestrel
functions called directly, in one run. Prints both medians and the ratio.

    .venv/bin/python bench/cycle.py [--symbols 10] [--repeats 7]

The Prefect side runs against a temporary local API server (prefect_test_harness), the
way tests do; its start-up is excluded. Both sides use the simulated market, a fresh
SQLite store, and advance the market one candle between repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kestrel.config.prefect_env import configure_prefect_env

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK", "AVAX", "TRX"]


def settings_for(data_dir: Path, symbols: int) -> dict[str, object]:
    from kestrel.config.settings import load_settings

    watchlist = [{"symbol": f"{s}/USDT", "timeframe": "1h"} for s in SYMBOLS[:symbols]]
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=watchlist,
        paper={"market_data": "simulated", "seed": 3},
        risk={"min_confidence": 0.0},
    ).model_dump(mode="json")


def direct_cycle(config: dict[str, object]) -> None:
    from kestrel.config.settings import load_settings
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime
    from kestrel.trading import cycle

    settings = load_settings(**config)
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        for item in settings.watchlist:
            series = cycle.fetch_candles(rt, item)
            analysis = cycle.analyze_candles(series)
            verdict = cycle.assess_risk(rt, item, analysis)
            decision = cycle.make_decision(rt, item, analysis, verdict)
            cycle.execute(rt, decision)


def advance(config: dict[str, object]) -> None:
    from kestrel.config.settings import load_settings
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime

    settings = load_settings(**config)
    with trading_mode(settings.mode):
        feed = get_runtime(settings).feed
        assert feed is not None
        feed.advance()


def measure(label: str, run: object, config: dict[str, object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(config)  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
        advance(config)
    median = statistics.median(timings)
    print(f"{label:>8}: median {median * 1000:8.1f} ms over {repeats} cycles")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configure_prefect_env(root)
        from prefect.testing.utilities import prefect_test_harness

        from flows.trading_cycle import trading_cycle

        direct_config = settings_for(root / "direct", args.symbols)
        prefect_config = settings_for(root / "prefect", args.symbols)
        direct_cycle(direct_config)  # warm-up: imports, numba, markets
        with prefect_test_harness(server_startup_timeout=180):
            trading_cycle(config=prefect_config)  # warm-up: first flow run
            direct = measure("direct", direct_cycle, direct_config, args.repeats)
            through = measure(
                "prefect", lambda c: trading_cycle(config=c), prefect_config, args.repeats
            )
    print(
        f"symbols: {args.symbols}; Prefect / direct = {through / direct:.1f}x "
        f"(+{(through - direct) * 1000:.0f} ms per cycle)"
    )


if __name__ == "__main__":
    main()
