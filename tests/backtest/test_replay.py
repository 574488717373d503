"""A backtest replays what a live LLM analyst answered on the same candles: recorded once with
the real httpx client against the fake OpenAI server, exported, then replayed by the engine
with the server seeing no request at all and the same orders coming out. A miss stops the
backtest (on_missing_answer="error") or holds ("hold")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import DEFAULT_MODEL, FakeChatServer, Reply
from kestrel.analysis.base import Analyst
from kestrel.analysis.llm import LLMAnalyst
from kestrel.analysis.recordings import MemoryRecordings, export_recordings
from kestrel.backtest import backtest_store, execute, prepare
from kestrel.config.settings import KestrelSettings
from kestrel.errors import MissingRecording
from kestrel.models import EventType
from tests.backtest.helpers import btc_settings, sine_folder, spec


def trend_responder(body: dict[str, Any]) -> Reply:
    """BUY when the last close is below the first of the prompt's candles, else SELL: a
    deterministic LLM that trades on the sine wave."""
    rows = json.loads(body["messages"][1]["content"])["candles"]["rows"]
    return Reply.verdict("BUY" if rows[-1][4] < rows[0][4] else "SELL", 0.9, "trend")


@pytest.fixture
def server() -> Any:
    with FakeChatServer(responder=trend_responder, max_hang_s=20) as running:
        yield running


def llm_settings(tmp_path: Path, server: FakeChatServer) -> KestrelSettings:
    return btc_settings(
        tmp_path / "data",
        trading={
            "gates": {"daily_loss_limit_pct": None},
            "analysis": {
                "mode": "SOLO",
                "solo": "llm",
                "analysts": [{"kind": "llm"}],
                "llm": {"base_url": server.base_url, "model": DEFAULT_MODEL, "timeout_s": 10},
            },
        },
    )


def orders_of(settings: KestrelSettings, folder: Path, **extra: Any) -> list[tuple[Any, ...]]:
    with backtest_store() as store:
        execute(prepare(settings, spec(folder, **extra), store))
        return [(o.side, o.amount, o.status) for o in store.list_orders()]


def test_a_backtest_replays_live_answers_without_calling_out(
    tmp_path: Path, server: FakeChatServer
) -> None:
    settings = llm_settings(tmp_path, server)
    folder = sine_folder(tmp_path, steps=40)
    recordings = MemoryRecordings()
    live_panel: list[tuple[Analyst, float]] = [
        (LLMAnalyst(settings.trading.analysis.llm, "llm", recordings), 1.0)
    ]
    with backtest_store() as store:
        execute(prepare(settings, spec(folder), store), analysts=live_panel)
        live_orders = [(o.side, o.amount, o.status) for o in store.list_orders()]
    asked = len(server.completions())
    assert asked == 40 and len(recordings.answers) == 40
    assert live_orders, "the scripted LLM should have traded"
    path = tmp_path / "recordings.jsonl"
    export_recordings(recordings.answers.items(), path)

    replayed = orders_of(settings, folder, recordings=path, on_missing_answer="error")
    assert replayed == live_orders
    assert len(server.completions()) == asked  # not one request from the backtest


def test_a_miss_stops_the_backtest_naming_analyst_symbol_and_candle(
    tmp_path: Path, server: FakeChatServer
) -> None:
    settings = llm_settings(tmp_path, server)
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(MissingRecording) as caught:
        orders_of(settings, sine_folder(tmp_path, steps=3), recordings=path,
                  on_missing_answer="error")  # fmt: skip
    message = str(caught.value)
    assert "llm analyst llm" in message and "ETH/BTC 5m" in message and "opened 20" in message
    assert server.requests() == []


def test_a_miss_holds_when_asked_to(tmp_path: Path, server: FakeChatServer) -> None:
    settings = llm_settings(tmp_path, server)
    with backtest_store() as store:
        run = execute(prepare(settings, spec(sine_folder(tmp_path, steps=3)), store))
        held = store.list_events(types=[EventType.TRADE_HELD])
        assert run.cycles == 3 and len(held) == 3
        assert all(e.data["analysis"]["abstentions"][0]["kind"] == "no_recording" for e in held)
    assert server.requests() == []
