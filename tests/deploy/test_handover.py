"""The live engine and the per-job schedules, on a real Prefect server: the engine pauses the
deployments it stands in for (and their silence alarms), a heartbeat re-pauses one that was
resumed behind its back, a clean stop resumes exactly what it paused, and when its heartbeats
stop the server's dead-man automation resumes the schedules and alerts on Telegram."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import cast
from uuid import UUID

import pytest

from deployments.automations import ENGINE_AUTOMATION, install_deadman
from deployments.spec import load_specs, runner_deployment
from fakes.telegram_server import FakeTelegramServer
from flows.handover import SILENT_PREFIX, Handover, covered_by
from kestrel.notify.settings import TelegramSettings

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(300)]

CHAT = 9002
NAMES = (
    "order-sync",
    "position-monitor",
    "notifications",
    "trading-cycle-majors",
    "trading-cycle-alts",
)
MAJORS = frozenset({("BTC/USDT", "1h"), ("ETH/USDT", "1h")})


@pytest.fixture
def deployments(prefect_api: str) -> Iterator[dict[str, UUID]]:
    """prefect.yaml's upkeep and cycle deployments, all resumed again afterwards, with the
    dead-man automations removed (they must not fire into later tests)."""
    from prefect import get_client

    from blocks.registry import register_block_types

    register_block_types()
    ids = {
        s.name: cast(UUID, runner_deployment(s).apply()) for s in load_specs() if s.name in NAMES
    }
    yield ids
    with get_client(sync_client=True) as client:
        for deployment_id in ids.values():
            client.resume_deployment(deployment_id)
        for automation in client.read_automations():
            if automation.name.startswith("kestrel-deadman"):
                client.delete_automation(automation.id)


def paused(ids: dict[str, UUID]) -> set[str]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {name for name, i in ids.items() if client.read_deployment(i).paused}


def alarms_enabled() -> dict[str, bool]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {
            a.name.removeprefix(SILENT_PREFIX): a.enabled
            for a in client.read_automations()
            if a.name.startswith(SILENT_PREFIX)
        }


def test_a_cycle_deployment_is_covered_only_by_all_its_symbols() -> None:
    majors = {"items": [{"symbol": "BTC/USDT", "timeframe": "1h"}, {"symbol": "ETH/USDT"}]}
    assert covered_by(majors, MAJORS)
    assert not covered_by(majors, frozenset({("BTC/USDT", "1h")}))
    assert not covered_by({"items": [{"symbol": "BTC/USDT", "timeframe": "4h"}]}, MAJORS)
    assert not covered_by({"items": []}, MAJORS)  # from settings: not known, keeps running


def test_the_engine_takes_over_and_hands_back_what_it_paused(
    deployments: dict[str, UUID],
) -> None:
    from prefect import get_client

    install_deadman(telegram=TelegramSettings(), token=None, cycle_after_s=1800, sync_after_s=300)
    with get_client(sync_client=True) as client:
        client.pause_deployment(deployments["notifications"])  # paused by hand, before
    engine = Handover(engine_id="test-engine-1", watchlist=MAJORS)

    newly = [n for n in engine.take_over() if n in NAMES]  # other tests' deployments too

    assert newly == ["order-sync", "position-monitor", "trading-cycle-majors"]
    assert paused(deployments) == {
        "notifications",
        "order-sync",
        "position-monitor",
        "trading-cycle-majors",
    }
    alarms = alarms_enabled()
    assert alarms["order-sync"] is False and alarms["trading-cycle-majors"] is False
    assert alarms["trading-cycle-alts"] is True  # still scheduled, still watched

    with get_client(sync_client=True) as client:  # e.g. `kestrel serve` re-applied it
        client.resume_deployment(deployments["order-sync"])
    engine.heartbeat("0 cycles")
    assert "order-sync" in paused(deployments)

    resumed = [n for n in engine.hand_back("stopped by the operator") if n in NAMES]

    assert resumed == ["order-sync", "position-monitor", "trading-cycle-majors"]
    assert paused(deployments) == {"notifications"}  # not the engine's to resume
    assert all(alarms_enabled().values())


def test_a_silent_engine_hands_back_through_the_deadman_switch(
    deployments: dict[str, UUID],
) -> None:
    with FakeTelegramServer() as telegram:
        settings = TelegramSettings(api_base_url=telegram.base_url, notify_chat_id=CHAT)
        result = install_deadman(
            telegram=settings,
            token=telegram.token,
            cycle_after_s=3600,
            sync_after_s=3600,
            engine_after_s=10,
        )
        assert ENGINE_AUTOMATION in result["automations"]
        clean = Handover(engine_id="test-engine-clean", watchlist=MAJORS)
        clean.take_over()
        clean.heartbeat("beating")
        clean.hand_back("stopped")  # a clean stop: its `stopped` event meets the expectation
        dying = Handover(engine_id="test-engine-dying", watchlist=MAJORS)
        dying.take_over()
        dying.heartbeat("beating")  # ... and then nothing: the process is gone

        def texts() -> list[str]:
            return [m.text for m in telegram.sent_messages(CHAT)]

        deadline = time.monotonic() + 180  # a hang guard: the server evaluates on its clock
        while paused(deployments) or not texts():
            left = deadline - time.monotonic()
            assert left > 0, f"still paused: {paused(deployments)}; alerts: {texts()}"
            with contextlib.suppress(TimeoutError):
                telegram.wait_for_messages(len(telegram.sent_messages()) + 1, timeout=min(left, 3))

        alerts = texts()
        assert len(alerts) == 1, alerts  # the dying engine only, not the clean one
        assert "the live engine is silent" in alerts[0]
        assert "order-sync" in alerts[0] and "trading-cycle-majors" in alerts[0]
        assert all(alarms_enabled().values())


def test_the_keeper_beats_only_while_the_engine_loop_is_alive(
    deployments: dict[str, UUID],
) -> None:
    from prefect import get_client

    from flows.handover import Keeper

    now = [0.0]
    loop_alive = [True]
    drains: list[float] = []
    engine = Handover(engine_id="test-engine-keeper", watchlist=MAJORS)
    keeper = Keeper(
        engine,
        alive=lambda t: "1 cycle" if loop_alive[0] else None,
        drain=lambda: drains.append(now[0]),
        clock=lambda: now[0],
        beat_s=30,
    )
    engine.take_over()

    def resumed_behind_its_back() -> None:
        with get_client(sync_client=True) as client:
            client.resume_deployment(deployments["order-sync"])

    resumed_behind_its_back()
    keeper.step()  # the first beat: re-asserts the takeover
    assert "order-sync" in paused(deployments)
    resumed_behind_its_back()
    now[0] = 29.0
    keeper.step()  # not a beat yet; notifications still drained at every step
    assert "order-sync" not in paused(deployments)
    assert drains == [0.0, 29.0]
    loop_alive[0] = False
    now[0] = 31.0
    keeper.step()  # a stuck loop: no beat, so nothing re-asserted
    assert "order-sync" not in paused(deployments)
    loop_alive[0] = True
    now[0] = 32.0
    keeper.step()
    assert "order-sync" in paused(deployments)
    engine.hand_back("test over")
