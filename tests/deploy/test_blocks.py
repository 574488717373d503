"""Kestrel's block types on a real Prefect server: registered by one call, loaded by name by
the flows, layered between the environment and the run's parameters, and their secrets never
stored as flow-run parameters. The same settings work without any block."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import cast
from uuid import UUID

import pytest
from pydantic import SecretStr

from blocks.registry import block_types, register_block_types
from blocks.secret_env import STORE_URI_ENV, TOKEN_ENV
from blocks.settings import (
    BlockRefs,
    deep_merge,
    exported,
    resolve_settings,
    subflow_config,
)
from kestrel.config.settings import PaperSettings, WatchlistItem, load_settings
from kestrel.mode import TradingMode
from kestrel.models import Decision
from kestrel.operator.run import installation_env
from kestrel.risk.controls import emergency_stop_state
from kestrel.store import open_store

pytestmark = pytest.mark.prefect

TOKEN = "424242:test-token-never-stored"


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KESTREL_* from the developer's shell, and an empty config file."""
    for key in [k for k in os.environ if k.startswith("KESTREL_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "kestrel.toml"
    config.write_text("")
    monkeypatch.setenv("KESTREL_CONFIG", str(config))
    return tmp_path


@pytest.fixture
def saved_blocks(prefect_api: str, isolated_env: Path) -> Iterator[dict[str, object]]:
    from blocks.store_connection import StoreConnection
    from blocks.telegram_bot import TelegramBot
    from blocks.trading_config import TradingConfig

    register_block_types()
    store_dir = isolated_env / "books"
    TradingConfig(
        mode=TradingMode.DEMO,
        watchlist=[WatchlistItem(symbol="SOL/USDT", trade_amount_usd=Decimal("25"))],
        paper=PaperSettings(market_data="simulated", starting_balance=Decimal("5000")),
    ).save("alts", overwrite=True)
    StoreConnection(uri=SecretStr(f"sqlite:///{store_dir}")).save("books", overwrite=True)
    TelegramBot(bot_token=SecretStr(TOKEN), notify_chat_id=77).save("bot", overwrite=True)
    yield {"store_dir": store_dir}


def test_block_types_register(prefect_api: str) -> None:
    from prefect import get_client

    slugs = register_block_types()
    assert slugs == [cls.get_block_type_slug() for cls in block_types()]
    assert {
        "kestrel-telegram-bot",
        "kestrel-store-connection",
        "kestrel-trading-config",
        "kestrel-exchange-account",
    } <= set(slugs)
    with get_client(sync_client=True) as client:
        for slug in slugs:
            assert client.read_block_type_by_slug(slug).name.startswith("Kestrel ")
    assert register_block_types() == slugs  # idempotent


def test_layers_env_then_blocks_then_parameters(
    saved_blocks: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_WATCHLIST", '[{"symbol": "ADA/USDT"}]')
    monkeypatch.setenv("KESTREL_RISK__MIN_CONFIDENCE", "0.7")
    refs = BlockRefs(trading_config="alts", store="books", telegram="bot")

    resolved = resolve_settings(refs, {"risk": {"max_open_positions": 3}})
    settings = resolved.settings
    assert [i.symbol for i in settings.watchlist] == ["SOL/USDT"]  # block beats environment
    assert settings.risk.min_confidence == 0.7  # environment kept where no block speaks
    assert settings.risk.max_open_positions == 3  # parameters beat everything
    assert settings.paper.starting_balance == 5000
    assert settings.store_uri == f"sqlite:///{saved_blocks['store_dir']}"
    assert settings.telegram.notify_chat_id == 77
    assert settings.telegram.bot_token is not None
    assert settings.telegram.bot_token.get_secret_value() == TOKEN
    assert resolved.sources == ["trading-config/alts", "store/books", "telegram/bot"]
    assert resolved.secret_env == {
        STORE_URI_ENV: settings.store_uri,
        TOKEN_ENV: TOKEN,
        **installation_env(settings),  # mode and REAL whitelist reach subflows this way
    }

    overridden = resolve_settings(refs, {"watchlist": [{"symbol": "XRP/USDT"}]}).settings
    assert [i.symbol for i in overridden.watchlist] == ["XRP/USDT"]

    # The subflow gets the same settings back from its parameters plus the environment.
    config = subflow_config(settings)
    assert "store_uri" not in config and "bot_token" not in config["telegram"]
    assert TOKEN not in json.dumps(config)
    assert "mode" not in config and "real_exchange_whitelist" not in config
    with exported(resolved.secret_env):
        again = load_settings(**config)
    assert again == settings
    assert TOKEN_ENV not in os.environ and STORE_URI_ENV not in os.environ  # restored


def test_missing_block_is_named(prefect_api: str, isolated_env: Path) -> None:
    with pytest.raises(ValueError, match="no-such-store"):
        resolve_settings(BlockRefs(store="no-such-store"))


def test_without_blocks_the_environment_and_file_decide(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_env / "kestrel.toml").write_text(
        '[[watchlist]]\nsymbol = "DOT/USDT"\n[risk]\nmin_confidence = 0.6\n'
    )
    monkeypatch.setenv("KESTREL_STORE_URI", "sqlite:///somewhere")
    resolved = resolve_settings(None, {"risk": {"max_open_positions": 2}})
    assert [i.symbol for i in resolved.settings.watchlist] == ["DOT/USDT"]
    assert resolved.settings.risk.min_confidence == 0.6
    assert resolved.settings.risk.max_open_positions == 2
    assert resolved.secret_env == {
        STORE_URI_ENV: "sqlite:///somewhere",
        **installation_env(resolved.settings),
    }
    assert deep_merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": 3}, "l": [2]}) == {
        "a": {"b": 3, "c": 2},
        "l": [2],
    }


def test_flows_load_blocks_by_name_and_store_no_secret(saved_blocks: dict[str, object]) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from flows.ops import StopAction, emergency_stop
    from flows.trading_cycle import trading_cycle

    refs = BlockRefs(trading_config="alts", store="books", telegram="bot")
    state = emergency_stop(action=StopAction.STOP, reason="block test", blocks=refs)
    assert state.active
    settings = resolve_settings(refs).settings
    store = open_store(settings, TradingMode.DEMO)
    try:
        assert emergency_stop_state(store).reason == "block test"
    finally:
        store.close()

    cycle_state = trading_cycle(watchlist="alts", blocks=refs, return_state=True)
    assert cycle_state.is_completed(), cycle_state.message
    decisions = cast(list[Decision], cycle_state.result())
    assert [d.symbol for d in decisions] == ["SOL/USDT"]
    assert decisions[0].action.value == "HOLD"  # the stop set from the "UI" flow holds
    store = open_store(settings, TradingMode.DEMO)
    try:
        assert store.list_orders() == []
        assert store.list_events(types=["TRADE_HELD", "TRADE_BLOCKED"])  # type: ignore[list-item]
    finally:
        store.close()
    parent_id = UUID(str(cycle_state.state_details.flow_run_id))
    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(parent_id)
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )
    assert children == [], "one flow per job: the cycle runs in this run, not in a subflow"
    stored = json.dumps(parent.parameters, default=str)
    assert TOKEN not in stored
    assert str(saved_blocks["store_dir"]) not in stored
    assert parent.parameters["blocks"]["trading_config"] == "alts"
