"""The dead-man's switch on a real Prefect server: the automations are created (and updated,
not duplicated, on a second install), and they fire: a crashed run and a silent order-sync
each put a message into the (fake) Telegram chat, sent by the server itself."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from blocks.settings import load_block
from deployments.automations import (
    CRASH_AUTOMATION,
    SILENT_PREFIX,
    WEBHOOK_BLOCK,
    install_deadman,
)
from deployments.spec import load_specs, runner_deployment
from fakes.telegram_server import FakeTelegramServer
from kestrel.notify.settings import TelegramSettings

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(300)]

CHAT = 9001
WATCHED = ("order-sync", "trading-cycle-majors", "trading-cycle-alts")


@pytest.fixture
def telegram() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture
def deployments(prefect_api: str) -> dict[str, object]:
    from blocks.registry import register_block_types

    register_block_types()
    ids: dict[str, object] = {}
    for spec in load_specs():
        if spec.name in WATCHED:
            ids[spec.name] = runner_deployment(spec).apply()
    return ids


@pytest.fixture
def cleanup(prefect_api: str) -> Iterator[None]:
    """Remove the automations afterwards: they must not fire into later tests."""
    yield
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if automation.name.startswith("kestrel-deadman"):
                client.delete_automation(automation.id)


def test_deadman_is_created_and_fires(
    deployments: dict[str, object], telegram: FakeTelegramServer, cleanup: None
) -> None:
    from prefect import get_client
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.states import Crashed, Pending, Running

    settings = TelegramSettings(api_base_url=telegram.base_url, notify_chat_id=CHAT)
    first = install_deadman(
        telegram=settings, token=telegram.token, cycle_after_s=3600, sync_after_s=10
    )
    again = install_deadman(
        telegram=settings, token=telegram.token, cycle_after_s=3600, sync_after_s=10
    )
    assert first["automations"] == again["automations"]  # updated in place
    assert first["telegram"] is True
    assert set(first["watched"]) >= set(WATCHED)

    with get_client(sync_client=True) as client:
        automations = {a.name: a for a in client.read_automations()}
        crash = automations[CRASH_AUTOMATION]
        assert crash.trigger.expect == {"prefect.flow-run.Crashed"}  # type: ignore[union-attr]
        silent = automations[SILENT_PREFIX + "order-sync"]
        assert silent.trigger.posture.value == "Proactive"  # type: ignore[union-attr]
        assert silent.trigger.within == timedelta(seconds=10)  # type: ignore[union-attr]
        cycle = automations[SILENT_PREFIX + "trading-cycle-majors"]
        assert cycle.trigger.within == timedelta(hours=1)  # type: ignore[union-attr]
        names = [a.name for a in client.read_automations()]
        assert len(names) == len(set(names))
    webhook = load_block(CustomWebhookNotificationBlock, WEBHOOK_BLOCK)
    assert telegram.token not in webhook.url  # the token lives in the block's secrets

    # A crash: a run of order-sync whose process "died".
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployments["order-sync"])  # type: ignore[arg-type]
        client.set_flow_run_state(run.id, Pending(), force=True)
        client.set_flow_run_state(run.id, Running(), force=True)
        client.set_flow_run_state(run.id, Crashed(message="worker killed (test)"), force=True)

    def texts() -> list[str]:
        return [m.text for m in telegram.sent_messages(CHAT)]

    def both_alerts() -> bool:
        seen = texts()
        return any("crashed" in t for t in seen) and any("is silent" in t for t in seen)

    # Silence: no order-sync run completed within 10 s. Both alerts come from the server.
    deadline = time.monotonic() + 150
    while not both_alerts():
        left = deadline - time.monotonic()
        assert left > 0, f"alerts so far: {texts()}"
        with contextlib.suppress(TimeoutError):
            telegram.wait_for_messages(len(telegram.sent_messages()) + 1, timeout=min(left, 5))
    deadline_texts = texts()
    assert any("KESTREL ALERT: a run crashed" in t and "worker killed" in t for t in deadline_texts)
    assert any("KESTREL ALERT: order-sync is silent" in t for t in deadline_texts)
    assert not any("trading-cycle" in t for t in deadline_texts)  # 1 h has not passed


def test_without_telegram_the_automations_still_exist(
    deployments: dict[str, object], cleanup: None
) -> None:
    from prefect import get_client

    result = install_deadman(
        telegram=TelegramSettings(), token=None, cycle_after_s=1800, sync_after_s=300
    )
    assert result["telegram"] is False
    with get_client(sync_client=True) as client:
        crash = client.read_automations_by_name(CRASH_AUTOMATION)[0]
    assert [a.type for a in crash.actions] == ["do-nothing"]
