"""Deterministic identifiers. The same intent always gets the same client order id, so a retry
or a restart looks the order up on the exchange instead of placing it again.

Client order ids carry the installation's id: two Kestrel installations trading one exchange
account (each with its own store) decide on the same candles, and without it they would
compute the same ids and take each other's orders for their own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from kestrel.mode import TradingMode
from kestrel.models import OrderRole
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state

_ROLE_TAG = {
    OrderRole.PRIMARY: "p",
    OrderRole.STOP_LOSS: "s",
    OrderRole.TAKE_PROFIT: "t",
    OrderRole.EXIT: "x",
}

INSTALLATION_KEY = "installation"
_INSTALLATION = re.compile(r"^[a-z0-9]{8}$")

# A Kestrel client order id in text (logs, exchange listings): group 1 is the mode letter.
# Both forms: `k<mode><role>-<installation>-<22 hex>` and the earlier `k<mode><role>-<26 hex>`
# (orders stored before ids carried the installation keep their ids).
CLIENT_ORDER_ID = re.compile(r"\bk([dr])[pstx]-(?:[a-z0-9]{8}-[0-9a-f]{22}|[0-9a-f]{26})\b")


def cycle_id(symbol: str, timeframe: str, candle_timestamp: int) -> str:
    """A cycle acts at most once per closed candle of a symbol: that candle names the cycle."""
    return f"{symbol}|{timeframe}|{candle_timestamp}"


def client_order_id(
    mode: TradingMode, cycle: str, symbol: str, role: OrderRole, *, installation: str
) -> str:
    """`k<mode><role>-<installation>-<digest>`: 35 chars of [a-z0-9-] (Binance allows 36 of
    [A-Za-z0-9-_]). The installation is spelled out so an operator (and Kestrel) can tell
    whose order an exchange order is; it is in the digest too."""
    if not _INSTALLATION.match(installation):
        raise ValueError(f"installation id must be 8 chars of [a-z0-9], got {installation!r}")
    text = f"{installation}|{mode}|{cycle}|{symbol}|{role}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:22]
    return f"k{mode.value[0].lower()}{_ROLE_TAG[role]}-{installation}-{digest}"


def installation_id(store: Store) -> str:
    """This installation's id: made once, at random, and kept in the store it trades from
    (state `installation`), so every process and machine on that store agrees on it.

    Orders stored before ids carried it keep their stored client order ids: every lookup
    reads the id from the stored order, never recomputes it."""

    def make_once(doc: dict[str, Any] | None) -> StateChange[str]:
        if doc is not None:  # made before, maybe by another process that won the race
            return StateChange(result=str(doc["id"]))
        made = secrets.token_hex(4)
        return StateChange(result=made, value={"id": made})

    return update_state(store, INSTALLATION_KEY, make_once, what="the installation id", attempts=3)
