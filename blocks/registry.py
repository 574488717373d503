"""Registering Kestrel's block types with a Prefect API: `kestrel blocks register`.

Registration is idempotent (Prefect upserts the type and its schema), so `kestrel deploy`
and `kestrel serve` run it every time. The exchange-account block (blocks/exchange_account.py)
is registered when present.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from blocks.store_connection import StoreConnection
from blocks.telegram_bot import TelegramBot
from blocks.trading_config import TradingConfig

if TYPE_CHECKING:
    from prefect.blocks.core import Block

OPTIONAL_BLOCKS = (("blocks.exchange_account", "ExchangeAccount"),)


def block_types() -> list[type[Block]]:
    """Every Kestrel block class, the optional ones only if their module exists."""
    found: list[type[Block]] = [TelegramBot, StoreConnection, TradingConfig]
    for module_name, class_name in OPTIONAL_BLOCKS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but is broken: say so
            continue
        found.append(getattr(module, class_name))
    return found


def register_block_types() -> list[str]:
    """Register (or update) every block type with the current Prefect API; returns slugs."""
    slugs = []
    for block_class in block_types():
        block_class.register_type_and_schema()
        slugs.append(block_class.get_block_type_slug())
    return slugs
