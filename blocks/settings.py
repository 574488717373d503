"""Kestrel settings for a flow run: environment and kestrel.toml, then the blocks the run
names, then the run's own parameters (highest). Secrets never become flow parameters.

A deployment names its blocks in one `blocks` parameter (all optional). Whatever a block
holds that is secret (the store URI, the Telegram token) reaches the domain code through the
process environment for the duration of the run (`exported`), exactly as if the operator had
set KESTREL_STORE_URI / KESTREL_TELEGRAM__BOT_TOKEN; `subflow_config` leaves those fields out
of the settings handed to subflows, whose parameters Prefect stores and shows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field

from blocks.secret_env import STORE_URI_ENV, TOKEN_ENV
from blocks.store_connection import StoreConnection
from blocks.telegram_bot import TelegramBot
from blocks.trading_config import TradingConfig
from kestrel.config.settings import KestrelSettings
from kestrel.operator.run import INSTALLATION_ONLY, deep_merge, installation_env, settings_for_run

# Fields that may carry secrets: kept out of every flow parameter.
SECRET_FIELDS: dict[str, Any] = {"store_uri": True, "telegram": {"bot_token": True}}
_env_lock = threading.RLock()


class BlockRefs(BaseModel):
    """Names of saved Kestrel blocks a run loads; empty: the environment / kestrel.toml only.
    The exchange account is named by the settings (exchange_api.credentials_block)."""

    model_config = ConfigDict(extra="forbid")

    trading_config: str | None = Field(
        default=None, description="a Kestrel Trading Config block (mode, watchlist, risk)"
    )
    store: str | None = Field(default=None, description="a Kestrel Store Connection block")
    telegram: str | None = Field(default=None, description="a Kestrel Telegram Bot block")


@dataclass
class Resolved:
    settings: KestrelSettings
    secret_env: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def load_block[B: Block](block_class: type[B], name: str) -> B:
    """A saved block by name (sync); fails with Prefect's ValueError naming it if absent."""
    return cast("B", block_class.load(name))


def block_overrides(refs: BlockRefs) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(settings overrides, secret environment, what was loaded) from the named blocks."""
    overrides: dict[str, Any] = {}
    secret_env: dict[str, str] = {}
    sources: list[str] = []
    if refs.trading_config:
        trading = load_block(TradingConfig, refs.trading_config)
        overrides = deep_merge(overrides, trading.settings_overrides())
        sources.append(f"trading-config/{refs.trading_config}")
    if refs.store:
        store = load_block(StoreConnection, refs.store)
        overrides = deep_merge(overrides, store.settings_overrides())
        secret_env.update(store.secret_env())
        sources.append(f"store/{refs.store}")
    if refs.telegram:
        telegram = load_block(TelegramBot, refs.telegram)
        overrides = deep_merge(overrides, telegram.settings_overrides())
        secret_env.update(telegram.secret_env())
        sources.append(f"telegram/{refs.telegram}")
    return overrides, secret_env, sources


def resolve_settings(
    refs: BlockRefs | None = None, *overrides: Mapping[str, Any] | None, run: str = "flow run"
) -> Resolved:
    """Settings for one run; later `overrides` (the run's parameters) win, except that they
    may not widen the mode or the REAL whitelist the installation (environment, kestrel.toml,
    blocks) sets: SecurityError and a SECURITY event (kestrel.operator.run). Raises
    ConfigError naming a bad field."""
    installed, secret_env, sources = block_overrides(refs) if refs else ({}, {}, [])
    asked: dict[str, Any] = {}
    for layer in overrides:
        if layer:
            asked = deep_merge(asked, layer)
    with exported(secret_env):
        settings = settings_for_run(asked, installed_overrides=installed, run=run)
    env = {**secret_env_of(settings), **installation_env(settings)}
    return Resolved(settings=settings, secret_env=env, sources=sources)


def secret_env_of(settings: KestrelSettings) -> dict[str, str]:
    """The secret-bearing settings as the environment variables Kestrel reads them from,
    whatever their source (block, parameter, file), so a subflow sees the same values."""
    env: dict[str, str] = {}
    if settings.store_uri:
        env[STORE_URI_ENV] = settings.store_uri
    token = settings.telegram.bot_token
    if token is not None and token.get_secret_value():
        env[TOKEN_ENV] = token.get_secret_value()
    return env


@contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there before."""
    if not env:
        yield
        return
    with _env_lock:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
    try:
        yield
    finally:
        with _env_lock:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def subflow_config(settings: KestrelSettings) -> dict[str, Any]:
    """The settings as a JSON-able `config` parameter, without any secret-bearing field
    (the subflow reads those from the environment, see `exported`) and without the
    installation-only ones (mode, REAL whitelist: exported too, see `installation_env`)."""
    exclude = {
        **SECRET_FIELDS,
        **dict.fromkeys(INSTALLATION_ONLY, True),
        "exchange_api": {"url": True},
    }
    return settings.model_dump(mode="json", exclude=exclude)
