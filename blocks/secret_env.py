"""The environment variables through which a block's secrets reach the domain code.

Their own module so that the block types (which put a secret there) and blocks.settings
(which loads the block types and exports the secrets for a run) both depend on it, and not on
each other: blocks.settings sits above the block types, never below them.
"""

from __future__ import annotations

__all__ = ["STORE_URI_ENV", "TOKEN_ENV"]

STORE_URI_ENV = "KESTREL_STORE_URI"
TOKEN_ENV = "KESTREL_TELEGRAM__BOT_TOKEN"
