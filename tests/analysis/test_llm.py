"""The LLM analyst with the real httpx client against our local chat-completions server.

Every way the endpoint can fail - HTTP errors, junk, streaming against our wishes, refusals,
dropped connections, slow or dripping answers - ends in an abstention, and an abstention is
never a trade. Time bounds are shown without wall-clock asserts: the analyst has given up
while the server is still in the middle of answering.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from fakes.openai_server import DEFAULT_MODEL, FakeChatServer, Reply
from kestrel.analysis.base import AnalystInput, consult
from kestrel.analysis.engine import analyze, prepare
from kestrel.analysis.llm import LLMAnalyst
from kestrel.models import Action, CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.strategy.settings import SECRET_MASK, AnalysisSettings, AnalystSpec, LLMSettings

KEY = "sk-test-secret-123"


def llm_settings(server: FakeChatServer, **changes: Any) -> LLMSettings:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "model": DEFAULT_MODEL,
        "api_key": SecretStr(KEY),
        "timeout_s": 5.0,
    }
    values.update(changes)
    return LLMSettings(**values)


@pytest.fixture
def data(series: CandleSeries) -> AnalystInput:
    return prepare(series)


def ask(server: FakeChatServer, data: AnalystInput, **changes: Any) -> Signal | Abstention:
    return consult(LLMAnalyst(llm_settings(server, **changes)), data)


def test_a_valid_verdict_becomes_a_signal(chat_server: FakeChatServer, data: AnalystInput) -> None:
    price = float(data.price)
    chat_server.script(
        Reply.verdict("buy", 0.72, "trend intact", stop_loss=price * 0.97, take_profit=price * 1.05)
    )
    vote = ask(chat_server, data)
    assert isinstance(vote, Signal)
    assert (vote.action, vote.confidence, vote.analyst) == (Action.BUY, 0.72, "llm")
    assert "trend intact" in vote.reasoning
    assert vote.suggested_stop_loss is not None and vote.suggested_stop_loss < data.price
    assert vote.suggested_take_profit is not None and vote.suggested_take_profit > data.price


def test_the_request_is_a_plain_non_streaming_json_mode_chat_completion(
    chat_server: FakeChatServer, data: AnalystInput
) -> None:
    chat_server.script(Reply.verdict("HOLD", 0.4))
    ask(chat_server, data, temperature=0.0, max_tokens=300)
    (request,) = chat_server.completions()
    body = request.body
    assert body["model"] == DEFAULT_MODEL
    assert body["stream"] is False
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["max_tokens"]) == (0.0, 300)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    payload = json.loads(body["messages"][1]["content"])
    assert payload["symbol"] == "BTC/USDT"
    assert payload["indicators"]["rsi"] == pytest.approx(data.values["rsi"], abs=1e-6)
    assert len(payload["candles"]["rows"]) == 30


def test_fenced_json_is_accepted(chat_server: FakeChatServer, data: AnalystInput) -> None:
    content = '```json\n{"action": "SELL", "confidence": 0.61, "reasoning": "x"}\n```'
    chat_server.script(Reply.text(content))
    vote = ask(chat_server, data)
    assert isinstance(vote, Signal) and vote.action is Action.SELL


def test_json_mode_can_be_turned_off(chat_server: FakeChatServer, data: AnalystInput) -> None:
    chat_server.script(Reply.verdict("HOLD", 0.1))
    ask(chat_server, data, json_mode=False)
    assert "response_format" not in chat_server.completions()[0].body


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply.error(500, "boom"), "http_error"),
        (Reply.error(503, "overloaded"), "http_error"),
        (Reply.error(429, "rate limited", "rate_limit_error"), "http_error"),
        (Reply.text("I think you should buy."), "malformed"),
        (Reply.text('{"action": "BUY"}'), "malformed"),  # no confidence
        (Reply.text('{"action": "BUY", "confidence": 1.5}'), "malformed"),
        (Reply.text('{"action": "BUY", "confidence": true}'), "malformed"),
        (Reply.text('{"action": "SHORT", "confidence": 0.9}'), "malformed"),
        (Reply.text('{"action": "BUY", "confidence": "high"}'), "malformed"),
        (Reply.text("[1, 2, 3]"), "malformed"),
        (Reply.text('{"action": "BUY", "confidence": 0.9'), "malformed"),  # cut short
        (Reply.text('{"action": "BUY", "confidence": 0.9}', finish_reason="length"), "malformed"),
        (Reply.text(""), "malformed"),
        (Reply.raw(b"<html>502 Bad Gateway</html>", 200, "text/html"), "malformed"),
        (Reply.raw(b'{"choices": []}'), "malformed"),
        (Reply.raw(b'{"object": "chat.completion"}'), "malformed"),
        (Reply.raw(b"\x00\xff\xfe junk"), "malformed"),
        (Reply.streamed('{"action": "BUY", "confidence": 0.9}'), "malformed"),
        (Reply.refused("I can't help with trading."), "refused"),
        (Reply.drop(), "network"),
    ],
)
def test_failures_abstain(
    chat_server: FakeChatServer, data: AnalystInput, reply: Reply, kind: str
) -> None:
    chat_server.script(reply)
    vote = ask(chat_server, data)
    assert isinstance(vote, Abstention), vote
    assert vote.kind == kind
    assert KEY not in vote.detail


def test_levels_on_the_wrong_side_abstain(chat_server: FakeChatServer, data: AnalystInput) -> None:
    price = float(data.price)
    chat_server.script(
        Reply.verdict("BUY", 0.9, stop_loss=price * 1.01),
        Reply.verdict("BUY", 0.9, take_profit=price * 0.99),
    )
    assert isinstance(ask(chat_server, data), Abstention)
    assert isinstance(ask(chat_server, data), Abstention)


def test_wrong_key_unknown_model_and_no_key_are_http_errors(
    chat_server: FakeChatServer, data: AnalystInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESTREL_LLM_API_KEY", raising=False)
    monkeypatch.delenv("KESTREL_TRADING__ANALYSIS__LLM__API_KEY", raising=False)
    wrong = ask(chat_server, data, api_key=SecretStr("sk-wrong"))
    unknown = ask(chat_server, data, model="gpt-nonexistent")
    missing = ask(chat_server, data, api_key=None)
    for vote in (wrong, unknown, missing):
        assert isinstance(vote, Abstention) and vote.kind == "http_error"
    assert isinstance(wrong, Abstention) and "401" in wrong.detail
    assert isinstance(unknown, Abstention) and "404" in unknown.detail
    assert "Authorization" not in chat_server.completions()[-1].headers


def test_key_from_environment_when_the_setting_is_empty_or_a_dumped_mask(
    chat_server: FakeChatServer, data: AnalystInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_LLM_API_KEY", KEY)
    chat_server.script(*[Reply.verdict("HOLD", 0.3)] * 3)
    # A settings object that went through model_dump(mode="json") holds the mask, not the key.
    assert isinstance(ask(chat_server, data, api_key=None), Signal)
    assert isinstance(ask(chat_server, data, api_key=SecretStr(SECRET_MASK)), Signal)
    monkeypatch.delenv("KESTREL_LLM_API_KEY")
    monkeypatch.setenv("KESTREL_TRADING__ANALYSIS__LLM__API_KEY", KEY)
    assert isinstance(ask(chat_server, data, api_key=SecretStr(SECRET_MASK)), Signal)
    assert KEY not in repr(llm_settings(chat_server))


def test_a_slow_answer_is_abandoned_while_the_server_still_holds_it(
    chat_server: FakeChatServer, data: AnalystInput
) -> None:
    chat_server.script(Reply.verdict("BUY", 0.9).slow(15))
    vote = ask(chat_server, data, timeout_s=0.5)
    assert isinstance(vote, Abstention) and vote.kind == "timeout"
    assert chat_server.answering == 1  # the server has not even started its answer


def test_a_dripping_answer_is_abandoned_mid_body(
    chat_server: FakeChatServer, data: AnalystInput
) -> None:
    # ~250 bytes at one byte per 0.1 s: each read arrives well within any read timeout,
    # only the bound on the whole request stops it.
    chat_server.script(Reply.verdict("BUY", 0.9).dripping(0.1))
    vote = ask(chat_server, data, timeout_s=0.8)
    assert isinstance(vote, Abstention) and vote.kind == "timeout"
    assert chat_server.answering == 1


def test_too_large_an_answer_abstains(chat_server: FakeChatServer, data: AnalystInput) -> None:
    big = {"action": "HOLD", "confidence": 0.1, "reasoning": "x" * 5000}
    chat_server.script(Reply.text(json.dumps(big)))
    vote = ask(chat_server, data, max_response_bytes=2048)
    assert isinstance(vote, Abstention) and vote.kind == "malformed"


def test_nothing_listening_abstains(data: AnalystInput) -> None:
    with FakeChatServer() as server:
        url = server.base_url
    vote = consult(LLMAnalyst(LLMSettings(base_url=url, model=DEFAULT_MODEL, timeout_s=2)), data)
    assert isinstance(vote, Abstention) and vote.kind in ("network", "timeout")


def test_too_few_candles_abstain_without_asking(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    short = series.model_copy(update={"candles": series.candles[:10]})
    vote = ask(chat_server, prepare(short))
    assert isinstance(vote, Abstention) and vote.kind == "insufficient_data"
    assert chat_server.completions() == []


def test_a_solo_llm_that_abstains_never_trades(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    chat_server.script(Reply.error(500))
    settings = AnalysisSettings(
        solo="gpt",
        analysts=[AnalystSpec(kind="llm", name="gpt", llm=llm_settings(chat_server))],
    )
    result = analyze(series, settings=settings)
    assert result.signal.action is Action.HOLD
    assert [(a.analyst, a.kind) for a in result.abstentions] == [("gpt", "http_error")]
    assert result.votes == []


def test_a_solo_llm_verdict_is_the_analysis(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    chat_server.script(Reply.verdict("BUY", 0.8, "because"))
    settings = AnalysisSettings(
        solo="llm", analysts=[AnalystSpec(kind="llm", llm=llm_settings(chat_server))]
    )
    result = analyze(series, settings=settings)
    assert (result.signal.action, result.signal.confidence) == (Action.BUY, 0.8)
    assert result.indicators["rsi"] is not None
    assert result.price == Decimal(str(series.candles[-1].close))
