"""The per-process runtime cache."""

from __future__ import annotations

from pathlib import Path


def test_runtimes_are_bounded_and_evicted_stores_reopen(tmp_data_dir: Path) -> None:
    from kestrel import runtime
    from kestrel.config.settings import load_settings

    runtime.reset_runtimes()
    built = [
        runtime.get_runtime(
            load_settings(
                data_dir=tmp_data_dir,
                paper={"market_data": "simulated"},
                watchlist=[{"symbol": "BTC/USDT", "trade_amount_usd": str(100 + i)}],
            )
        )
        for i in range(runtime.MAX_RUNTIMES + 3)
    ]
    assert len(runtime._cache) == runtime.MAX_RUNTIMES
    assert built[0].store.list_orders() == []  # evicted and closed, still usable
    runtime.reset_runtimes()
