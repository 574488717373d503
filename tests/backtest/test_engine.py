"""The engine: the live pipeline on synthetic (labelled) candles, trades that reconcile,
no fill before the decision's candle closed, and no live service called."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.backtest import backtest_store, build_result, execute, prepare
from kestrel.backtest.engine import BACKTEST_INSTALLATION, BacktestRun, panel
from kestrel.models import EventType, OrderRole, OrderStatus, timeframe_ms
from tests.backtest.helpers import btc_settings, sine_folder, spec


@pytest.fixture
def finished(tmp_path: Path) -> Iterator[BacktestRun]:
    folder = sine_folder(tmp_path)
    with backtest_store() as store:
        run = prepare(btc_settings(tmp_path / "data"), spec(folder), store)
        yield execute(run)


def test_trades_are_made_by_the_live_code_and_reconcile(finished: BacktestRun) -> None:
    result = build_result(finished)
    assert result.errors == []
    assert result.status == "complete"
    assert result.metrics.trade_count >= 2
    assert result.reconciled, result.books
    assert result.orders_by_status.get("FILLED", 0) >= 4
    store = finished.runtime.store
    # every decision is an event, as in a live cycle (one per symbol per step)
    decisions = store.list_events(
        types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
    )
    primary_decisions = [e for e in decisions if e.event_id.startswith("decision:ETH/BTC|")]
    assert len(primary_decisions) == finished.cycles
    orders = store.list_orders()
    assert all(f"-{BACKTEST_INSTALLATION}-" in o.client_order_id for o in orders)
    # native stop-losses were placed by protection, exits by the monitor
    assert any(o.role is OrderRole.STOP_LOSS for o in orders)
    assert any(o.role is OrderRole.EXIT and o.status is OrderStatus.FILLED for o in orders)


def test_no_fill_before_the_decision_candle_closed(finished: BacktestRun) -> None:
    store = finished.runtime.store
    period = timeframe_ms("5m")
    for order in store.list_orders(roles=[OrderRole.PRIMARY]):
        assert order.cycle_id is not None
        candle_open = int(order.cycle_id.rsplit("|", 1)[1])
        decided_at = candle_open + period
        assert int(order.created_at.timestamp() * 1000) == decided_at  # market time, not wall
        for fill in store.list_fills(client_order_id=order.client_order_id):
            assert fill.timestamp >= decided_at  # the next candle's open at the earliest


def test_equity_is_recorded_after_every_step(finished: BacktestRun) -> None:
    assert len(finished.equity) == len(finished.schedule)
    assert [p.timestamp for p in finished.equity] == [t for t, _ in finished.schedule]
    assert all(p.equity is not None for p in finished.equity)


class _Listener:
    """A local TCP port that counts connections: what a live LLM or sentiment call would hit."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_llm_and_sentiment_analysts_never_call_out(tmp_path: Path) -> None:
    listener = _Listener()
    try:
        settings = btc_settings(
            tmp_path / "data",
            trading={
                "gates": {"daily_loss_limit_pct": None},
                "analysis": {
                    "mode": "SOLO",
                    "solo": "llm",
                    "analysts": [{"kind": "llm"}, {"kind": "sentiment"}],
                    "llm": {"base_url": listener.url, "model": "m"},
                    "sentiment": {"url": listener.url},
                },
            },
        )
        assert [type(a).__name__ for a, _ in panel(settings)] == ["ReplayedLLM"]
        with backtest_store() as store:
            run = execute(prepare(settings, spec(sine_folder(tmp_path, steps=6)), store))
            held = store.list_events(types=[EventType.TRADE_HELD])
            assert run.cycles == 6 and len(held) == 6
            abstentions = [e.data["analysis"]["abstentions"] for e in held]
            assert all(a[0]["kind"] == "no_recording" for a in abstentions)
            assert store.list_orders() == []
        assert listener.connections == 0
    finally:
        listener.close()


def test_ctrl_c_keeps_a_result_marked_partial(tmp_path: Path) -> None:
    from kestrel.backtest import run_backtest

    def interrupt(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    settings = btc_settings(tmp_path / "data")
    outcome = run_backtest(
        settings, spec(sine_folder(tmp_path, steps=30)), progress=interrupt, charts=False
    )
    assert outcome.result.status == "partial"
    assert outcome.result.steps == 5 and outcome.result.cycles == 5
    assert outcome.result.reconciled
    assert outcome.folder is not None and (outcome.folder / "result.json").is_file()


def test_one_clock_for_a_5m_and_a_1h_symbol(tmp_path: Path) -> None:
    """Each symbol's cycle runs at each close of its own timeframe, on one shared clock:
    every decision is stamped with the market time its candle closed."""
    from datetime import UTC, datetime, timedelta

    from tests.backtest.fixtures import START_MS, sine_candles, write_csv

    folder = tmp_path / "synthetic"
    write_csv(folder, "ETH/BTC", "5m", sine_candles(12 * 110, "5m"))
    write_csv(folder, "XMR/BTC", "1h", sine_candles(110, "1h", price=0.02))
    settings = btc_settings(
        tmp_path / "data",
        watchlist=[
            {
                "symbol": "ETH/BTC",
                "timeframe": "5m",
                "stake_amount": "0.05",
                "stake_currency": "BTC",
            },
            {
                "symbol": "XMR/BTC",
                "timeframe": "1h",
                "stake_amount": "0.05",
                "stake_currency": "BTC",
            },
        ],
    )
    start = datetime.fromtimestamp(START_MS / 1000, tz=UTC) + timedelta(hours=100)
    window = spec(folder, start=start, end=start + timedelta(hours=3))
    with backtest_store() as store:
        run = execute(prepare(settings, window, store))
        decisions = [
            e
            for e in store.list_events(
                types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
            )
            if e.event_id.startswith("decision:") and "|" in e.event_id
        ]
    by_symbol: dict[str, list[int]] = {}
    for event in decisions:
        candle_open = int(event.event_id.split("|")[2].split(":")[0])
        period = timeframe_ms("1h" if event.symbol == "XMR/BTC" else "5m")
        closed_at = candle_open + period
        assert int(event.created_at.timestamp() * 1000) == closed_at  # decided at its close
        by_symbol.setdefault(event.symbol or "", []).append(closed_at)
    assert len(by_symbol["ETH/BTC"]) == 36  # every 5m close of the 3 hours (the last only syncs)
    assert len(by_symbol["XMR/BTC"]) == 3
    assert all(t % timeframe_ms("1h") == 0 for t in by_symbol["XMR/BTC"])
    assert run.cycles == 39
