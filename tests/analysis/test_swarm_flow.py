"""SWARM mode through Prefect: the analysts of each symbol run as concurrent tasks, the vote
is recorded on every decision event, and the cycle publishes its table artifact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import DEFAULT_MODEL, FakeChatServer, Reply
from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType
from kestrel.runtime import reset_runtimes
from kestrel.store.router import StoreRouter

pytestmark = pytest.mark.prefect
KEY = "sk-swarm-test"


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def slow_buy(request: dict[str, Any]) -> Reply:
    return Reply.verdict("BUY", 0.9, "scripted").slow(1.0)


def swarm_settings(data_dir: Path, server: FakeChatServer) -> KestrelSettings:
    llm = {"base_url": server.base_url, "model": DEFAULT_MODEL, "api_key": KEY, "timeout_s": 10}
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=[
            {"symbol": "BTC/USDT", "timeframe": "1h"},
            {"symbol": "ETH/USDT", "timeframe": "1h"},
        ],
        paper={"market_data": "simulated", "seed": 5},
        trading={
            "analysis": {
                "mode": "SWARM",
                "agreement_threshold": 0.5,
                "analysts": [
                    {"kind": "technical", "weight": 2},
                    {"kind": "llm", "name": "llm-a", "llm": llm},
                    {"kind": "llm", "name": "llm-b", "llm": llm},
                    {"kind": "sentiment", "weight": 0.5},
                ],
                "sentiment": {"url": server.sentiment_url},
            }
        },
    )


def test_swarm_cycle(prefect_harness: None, tmp_data_dir: Path) -> None:
    from prefect.artifacts import Artifact

    from flows.trading_cycle import trading_cycle

    with FakeChatServer(api_key=KEY, responder=slow_buy) as server:
        server.set_sentiment(20, "Extreme Fear")
        server.script(Reply.error(503, "overloaded"))  # one LLM answer of this cycle fails
        settings = swarm_settings(tmp_data_dir, server)
        # The API key survives the JSON round trip the flow's parameters take only from the
        # environment (a dumped SecretStr is a mask); pass it there, as a deployment would.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("KESTREL_LLM_API_KEY", KEY)
            decisions = trading_cycle(config=settings.model_dump(mode="json"))
        assert server.most_answering >= 2  # analysts (and symbols) were asked concurrently
        assert len(server.completions()) == 4  # 2 symbols x 2 LLM analysts
    assert sorted(d.symbol for d in decisions) == ["BTC/USDT", "ETH/USDT"]
    with trading_mode(TradingMode.DEMO):
        events = StoreRouter(settings).list_events(
            types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
        )
    assert len(events) == 2
    abstained = []
    for event in events:
        analysis = event.data["analysis"]
        assert analysis["mode"] == "SWARM" and analysis["threshold"] == 0.5
        voters = {v["analyst"] for v in analysis["votes"]}
        gave_up = {a["analyst"] for a in analysis["abstentions"]}
        assert voters | gave_up == {"technical", "llm-a", "llm-b", "sentiment"}
        abstained += [a["kind"] for a in analysis["abstentions"]]
    assert abstained == ["http_error"]
    artifact = Artifact.get("cycle-decisions-demo")  # sync outside an event loop
    assert artifact is not None and "profile" in str(getattr(artifact, "data", ""))
