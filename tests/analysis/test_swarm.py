"""SWARM consensus: the confidence-weighted vote, its threshold, quorum, abstentions and
dissent - as tables over the pure aggregation, as properties, and end to end with real
analysts (technical, LLM and sentiment over HTTP)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from fakes.openai_server import DEFAULT_MODEL, FakeChatServer, Reply
from kestrel.analysis.base import Vote
from kestrel.analysis.engine import analyze
from kestrel.analysis.swarm import dissent, solo, swarm
from kestrel.models import Action, CandleSeries, Signal
from kestrel.models.analysis import Abstention
from kestrel.strategy.settings import AnalysisSettings, AnalystSpec, LLMSettings


def vote(name: str, action: str, confidence: float, **levels: Decimal) -> Signal:
    return Signal(action=Action(action), confidence=confidence, analyst=name, **levels)


def abstain(name: str) -> Abstention:
    return Abstention(analyst=name, kind="timeout", detail="slow")


A, B, C = "a", "b", "c"


@pytest.mark.parametrize(
    ("votes", "threshold", "action", "agreement"),
    [
        # unanimous: the support is the weighted mean confidence
        ([(vote(A, "BUY", 0.8), 1), (vote(B, "BUY", 0.6), 1)], 0.6, "BUY", 0.7),
        # one BUY and one HOLD: the HOLD dilutes
        ([(vote(A, "BUY", 0.8), 1), (vote(B, "HOLD", 0.9), 1)], 0.6, "HOLD", 0.4),
        ([(vote(A, "BUY", 0.8), 1), (vote(B, "HOLD", 0.0), 1)], 0.4, "BUY", 0.4),  # at threshold
        ([(vote(A, "BUY", 0.8), 1), (vote(B, "HOLD", 0.0), 1)], 0.4001, "HOLD", 0.4),
        # opposing sides of equal strength: a tie is no consensus
        ([(vote(A, "BUY", 0.9), 1), (vote(B, "SELL", 0.9), 1)], 0.1, "HOLD", 0.45),
        # weights decide
        ([(vote(A, "BUY", 0.9), 3), (vote(B, "SELL", 0.9), 1)], 0.6, "BUY", 0.675),
        ([(vote(A, "BUY", 0.9), 1), (vote(B, "SELL", 0.9), 3)], 0.6, "SELL", 0.675),
        # abstentions are not in the denominator
        ([(vote(A, "SELL", 0.7), 1), (abstain(B), 5)], 0.6, "SELL", 0.7),
        (
            [(vote(A, "BUY", 0.7), 1), (vote(B, "BUY", 0.5), 1), (vote(C, "SELL", 0.9), 1)],
            0.4,
            "BUY",
            0.4,
        ),
    ],
)
def test_weighted_vote(
    votes: list[tuple[Vote, float]], threshold: float, action: str, agreement: float
) -> None:
    signal, consensus = swarm(votes, threshold=threshold)
    assert signal.action is Action(action)
    assert consensus.agreement == pytest.approx(agreement)
    assert consensus.reached is (action != "HOLD")
    if action != "HOLD":
        assert signal.confidence == pytest.approx(agreement, abs=1e-4)
    else:
        assert signal.confidence == 0.0


@pytest.mark.parametrize(
    ("votes", "min_votes", "action"),
    [
        ([(vote(A, "BUY", 0.9), 1), (abstain(B), 1)], 2, "HOLD"),
        ([(vote(A, "BUY", 0.9), 1), (vote(B, "BUY", 0.9), 1), (abstain(C), 1)], 2, "BUY"),
        ([(abstain(A), 1), (abstain(B), 1)], 1, "HOLD"),
    ],
)
def test_quorum(votes: list[tuple[Vote, float]], min_votes: int, action: str) -> None:
    signal, consensus = swarm(votes, threshold=0.5, min_votes=min_votes)
    assert signal.action is Action(action)
    assert consensus.abstained == sum(isinstance(v, Abstention) for v, _ in votes)


def test_dissent_and_careful_levels() -> None:
    a = vote(A, "BUY", 0.9, suggested_stop_loss=Decimal("95"), suggested_take_profit=Decimal("120"))
    b = vote(B, "BUY", 0.8, suggested_stop_loss=Decimal("97"), suggested_take_profit=Decimal("110"))
    votes: list[tuple[Vote, float]] = [(a, 1), (b, 1), (vote(C, "SELL", 0.3), 1)]
    signal, _ = swarm(votes, threshold=0.5)
    assert signal.action is Action.BUY
    assert (signal.suggested_stop_loss, signal.suggested_take_profit) == (97, 110)
    assert [v.analyst for v in dissent(signal.action, [v for v, _ in votes])] == [C]


def test_solo_passes_its_analyst_through_and_abstention_holds() -> None:
    signal, consensus = solo(vote(A, "SELL", 0.35))
    assert (signal.action, signal.confidence, consensus.mode) == (Action.SELL, 0.35, "SOLO")
    held, consensus = solo(abstain(A))
    assert held.action is Action.HOLD and consensus.abstained == 1


votes_strategy = st.lists(
    st.tuples(
        st.one_of(
            st.builds(
                vote,
                st.sampled_from([A, B, C, "d", "e"]),
                st.sampled_from(["BUY", "SELL", "HOLD"]),
                st.floats(0, 1),
            ),
            st.builds(abstain, st.sampled_from(["x", "y"])),
        ),
        st.floats(0.1, 10),
    ),
    max_size=6,
)


@given(votes=votes_strategy, threshold=st.floats(0.01, 1), min_votes=st.integers(1, 4))
def test_properties_of_the_vote(
    votes: list[tuple[Vote, float]], threshold: float, min_votes: int
) -> None:
    signal, consensus = swarm(votes, threshold=threshold, min_votes=min_votes)
    trading = [v for v, _ in votes if isinstance(v, Signal) and v.action is not Action.HOLD]
    if not trading:  # only HOLDs and abstentions can never make a trade
        assert signal.action is Action.HOLD
    if signal.action is not Action.HOLD:
        assert consensus.agreement >= threshold
        assert consensus.voters >= min_votes
        assert any(v.action is signal.action for v in trading)
        other = "SELL" if signal.action is Action.BUY else "BUY"
        assert consensus.support[signal.action.value] > consensus.support[other]
    assert 0 <= signal.confidence <= 1


def llm(server: FakeChatServer, **changes: object) -> LLMSettings:
    return LLMSettings(
        base_url=server.base_url,
        model=DEFAULT_MODEL,
        api_key=SecretStr("sk-test-secret-123"),
        timeout_s=3,
        **changes,
    )


def panel(server: FakeChatServer, threshold: float = 0.5) -> AnalysisSettings:
    return AnalysisSettings(
        mode="SWARM",
        agreement_threshold=threshold,
        analysts=[
            AnalystSpec(kind="technical", weight=2),
            AnalystSpec(kind="llm", name="gpt", llm=llm(server)),
            AnalystSpec(kind="sentiment", weight=0.5),
        ],
        sentiment={"url": server.sentiment_url},
    )


def test_swarm_with_real_analysts_records_votes_abstentions_and_dissent(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    chat_server.script(Reply.text("not json at all"))
    chat_server.set_sentiment(90, "Extreme Greed")
    result = analyze(series, settings=panel(chat_server))
    assert result.consensus is not None and result.consensus.mode == "SWARM"
    assert [(a.analyst, a.kind) for a in result.abstentions] == [("gpt", "malformed")]
    assert {v.analyst for v in result.votes} == {"technical", "sentiment"}
    assert result.consensus.voters == 2 and result.consensus.abstained == 1
    assert {v.analyst for v in result.dissent} == {
        v.analyst for v in result.votes if v.action is not result.signal.action
    }


def test_swarm_agreement_needs_the_threshold(
    chat_server: FakeChatServer, series: CandleSeries
) -> None:
    # The LLM and sentiment both say BUY strongly; whatever the technical analyst says,
    # BUY holds (2 x tech + 0.9 + 0.5 x 1.0) / 3.5 >= 0.4 only if tech is not against it.
    chat_server.set_sentiment(0, "Extreme Fear")
    chat_server.script(Reply.verdict("BUY", 0.9), Reply.verdict("BUY", 0.9))
    permissive = analyze(series, settings=panel(chat_server, threshold=0.1))
    strict = analyze(series, settings=panel(chat_server, threshold=1.0))
    assert permissive.consensus is not None and strict.consensus is not None
    assert strict.signal.action is Action.HOLD  # nothing short of unanimity at 100%
    assert permissive.consensus.support["BUY"] == pytest.approx(strict.consensus.support["BUY"])
    if permissive.consensus.support["BUY"] > permissive.consensus.support["SELL"]:
        assert permissive.signal.action is Action.BUY
