"""Recorded answers: a live LLM / sentiment analyst (real httpx against the fake OpenAI server)
records what it was told under a hash of what it sent; the backtest's replayers answer the
same input from the recording without any connection, and a miss holds or stops as asked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fakes.openai_server import DEFAULT_MODEL, FakeChatServer, Reply
from kestrel.analysis.base import AnalystInput, consult
from kestrel.analysis.engine import prepare
from kestrel.analysis.llm import LLMAnalyst
from kestrel.analysis.recordings import (
    MemoryRecordings,
    export_recordings,
    load_recordings,
    recording_key,
)
from kestrel.analysis.sentiment import SentimentAnalyst
from kestrel.backtest.analysts import ReplayedLLM, ReplayedSentiment
from kestrel.errors import ConfigError, MissingRecording
from kestrel.mode import TradingMode
from kestrel.models import Action, CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.store.recordings import PREFIX, StoreRecordings
from kestrel.store.sqlite import SQLiteStore
from kestrel.strategy.settings import LLMSettings, SentimentSettings


def llm_settings(server: FakeChatServer) -> LLMSettings:
    return LLMSettings(
        base_url=server.base_url,
        model=DEFAULT_MODEL,
        api_key=SecretStr("sk-test-secret-123"),
        timeout_s=5.0,
    )


@pytest.fixture
def data(series: CandleSeries) -> AnalystInput:
    return prepare(series)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = SQLiteStore(tmp_path / "live.sqlite3", TradingMode.DEMO)
    yield opened
    opened.close()


def test_a_live_answer_is_recorded_and_replayed_without_a_connection(
    chat_server: FakeChatServer, data: AnalystInput, store: SQLiteStore, tmp_path: Path
) -> None:
    price = float(data.price)
    chat_server.script(Reply.verdict("BUY", 0.8, "breakout", stop_loss=price * 0.97))
    settings = llm_settings(chat_server)
    live = consult(LLMAnalyst(settings, "llm", StoreRecordings(store)), data)
    assert isinstance(live, Signal) and live.action == Action.BUY
    (recorded,) = store.list_state(PREFIX)
    assert recorded[1]["content"] and recorded[1]["symbol"] == "BTC/USDT"
    assert "sk-test" not in str(recorded[1])

    path = tmp_path / "recordings.jsonl"
    assert export_recordings(StoreRecordings(store).items(), path) == 1
    asked = len(chat_server.requests())
    replayed = consult(ReplayedLLM(settings, "llm", load_recordings(path), "error"), data)
    assert replayed == live
    assert len(chat_server.requests()) == asked  # the fake server saw nothing more


def test_the_key_is_the_exact_input_other_candles_miss(
    chat_server: FakeChatServer, series: CandleSeries, store: SQLiteStore
) -> None:
    settings = llm_settings(chat_server)
    consult(LLMAnalyst(settings, "llm", StoreRecordings(store)), prepare(series))
    shorter = prepare(series.model_copy(update={"candles": series.candles[:-1]}))
    with pytest.raises(MissingRecording) as caught:
        ReplayedLLM(settings, "llm", StoreRecordings(store), "error").judge(shorter)
    message = str(caught.value)
    assert "llm analyst llm" in message and "BTC/USDT 1h" in message
    last = shorter.series.candles[-1].timestamp
    assert last != series.candles[-1].timestamp
    assert datetime.fromtimestamp(last / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ") in message
    # a different analyst name or model is another question too
    assert recording_key("llm", "m1", {"a": 1}) != recording_key("llm2", "m1", {"a": 1})
    assert recording_key("llm", "m1", {"a": 1}) != recording_key("llm", "m2", {"a": 1})


def test_a_miss_holds_with_a_reason_when_asked_to(
    chat_server: FakeChatServer, data: AnalystInput
) -> None:
    vote = consult(ReplayedLLM(llm_settings(chat_server), "llm", MemoryRecordings(), "hold"), data)
    assert isinstance(vote, Abstention) and vote.kind == "no_recording"
    assert "BTC/USDT" in vote.detail and "(HOLD)" in vote.detail
    with pytest.raises(MissingRecording, match="no recordings given"):
        consult(ReplayedLLM(llm_settings(chat_server), "llm", None, "error"), data)
    assert chat_server.requests() == []


def test_sentiment_is_recorded_per_day_and_replayed(
    chat_server: FakeChatServer, data: AnalystInput
) -> None:
    chat_server.set_sentiment(12, "Extreme Fear")
    settings = SentimentSettings(url=chat_server.sentiment_url)
    recordings = MemoryRecordings()
    live = consult(SentimentAnalyst(settings, "sentiment", recordings), data)
    assert isinstance(live, Signal) and live.action == Action.BUY
    asked = len(chat_server.requests())
    assert consult(ReplayedSentiment(settings, "sentiment", recordings, "error"), data) == live
    assert len(chat_server.requests()) == asked


class BrokenRecordings:
    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        raise OSError("disk full")


def test_a_failed_recording_never_fails_the_analysis(
    chat_server: FakeChatServer, data: AnalystInput, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.script(Reply.verdict("HOLD", 0.5))
    vote = consult(LLMAnalyst(llm_settings(chat_server), "llm", BrokenRecordings()), data)
    assert isinstance(vote, Signal) and vote.action == Action.HOLD
    assert "could not record analyst answer" in caplog.text


def test_a_bad_recordings_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"key": "k", "answer": {}}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        load_recordings(path)
    with pytest.raises(ConfigError, match=r"missing\.jsonl"):
        load_recordings(tmp_path / "missing.jsonl")
