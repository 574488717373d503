"""The notification deployments' flows: the bot token comes from a Telegram Bot block, reaches
the notification flow through the run's environment (never a parameter), and messages
arrive; without a bot the runs complete doing nothing instead of failing every minute."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.states import State
from pydantic import SecretStr

from blocks.settings import BlockRefs
from fakes.telegram_server import FakeTelegramServer
from kestrel.config.settings import load_settings
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType
from kestrel.store import open_store

pytestmark = pytest.mark.prefect

CHAT = 31337


def as_state(outcome: object) -> State[Any]:
    """What a flow called with return_state=True gives back (its typing says Awaitable)."""
    assert isinstance(outcome, State)
    return outcome


@pytest.fixture
def telegram() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture
def no_kestrel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("KESTREL_")]:
        monkeypatch.delenv(key)
    (tmp_path / "kestrel.toml").write_text("")
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "kestrel.toml"))
    return tmp_path


def test_notifications_with_a_bot_block(
    prefect_api: str, telegram: FakeTelegramServer, no_kestrel_env: Path
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from blocks.telegram_bot import TelegramBot
    from flows.notifications import daily_report, notifications

    TelegramBot(
        bot_token=SecretStr(telegram.token), notify_chat_id=CHAT, api_base_url=telegram.base_url
    ).save("deploy-test-bot", overwrite=True)
    config = {"data_dir": str(no_kestrel_env / "data"), "telegram": {"cursor_grace_s": 0}}
    store = open_store(load_settings(**config), TradingMode.DEMO)
    try:
        store.append_events(
            [
                Event(
                    event_id="stop:test",
                    type=EventType.EMERGENCY_STOP_SET,
                    mode=TradingMode.DEMO,
                    message="emergency stop SET by test: drill",
                    data={"by": "test", "reason": "drill"},
                )
            ]
        )
    finally:
        store.close()

    refs = BlockRefs(telegram="deploy-test-bot")
    state = as_state(notifications(blocks=refs, config=config, return_state=True))
    assert state.is_completed(), state.message
    assert state.result().sent == 1
    assert "drill" in telegram.sent_messages(CHAT)[0].text
    report = as_state(
        daily_report(blocks=refs, config=config, day=date(2026, 1, 5), return_state=True)
    )
    assert report.is_completed(), report.message
    assert len(telegram.sent_messages(CHAT)) == 2

    parent = UUID(str(state.state_details.flow_run_id))
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(parent)]
        runs += client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
            )
        )
    assert len(runs) == 1  # one flow per job: no subflow
    assert telegram.token not in json.dumps([r.parameters for r in runs], default=str)


def test_without_a_bot_runs_complete_doing_nothing(prefect_api: str, no_kestrel_env: Path) -> None:
    from flows.notifications import notifications
    from flows.telegram_bot import telegram_bot

    config = {"data_dir": str(no_kestrel_env / "data")}
    state = as_state(notifications(config=config, return_state=True))
    assert state.is_completed()
    assert "Telegram not configured" in (state.message or "")
    bot = as_state(telegram_bot(config=config, stop_after_s=1, return_state=True))
    assert bot.is_completed()
    assert "not polling" in (bot.message or "")
