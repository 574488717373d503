"""The wallet factory: which exchange a mode may trade on.

DEMO -> the paper exchange, always. REAL -> a ccxt exchange, only if it is on the REAL
whitelist (default deny: anything else is a security error and an event, never an order),
with credentials from the environment (or a Prefect Secret block, loaded by the flow layer
and passed in).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kestrel.errors import ConfigError, KestrelError
from kestrel.exchange.base import ExchangeClient
from kestrel.mode import TradingMode, current_mode
from kestrel.models import Event, EventType, utcnow
from kestrel.settings import KestrelSettings
from kestrel.store.base import Store

if TYPE_CHECKING:
    from kestrel.market import MarketFeed


class SecurityError(KestrelError):
    """Refused for safety: wrong mode, exchange not whitelisted, ..."""


def _refuse(store: Store, message: str) -> SecurityError:
    store.append_events(
        [
            Event(
                event_id=f"security:{utcnow().isoformat()}",
                type=EventType.SECURITY,
                mode=current_mode(),
                message=message,
            )
        ]
    )
    return SecurityError(message)


def real_credentials(exchange_id: str) -> tuple[str, str]:
    prefix = f"KESTREL_{exchange_id.upper()}_"
    key, secret = os.environ.get(prefix + "API_KEY"), os.environ.get(prefix + "API_SECRET")
    if not key or not secret:
        raise ConfigError(
            f"REAL trading on {exchange_id} needs {prefix}API_KEY and {prefix}API_SECRET "
            "(environment) or an exchange-account block"
        )
    return key, secret


def build_exchange(
    settings: KestrelSettings,
    store: Store,
    *,
    feed: MarketFeed | None = None,
    credentials: tuple[str, str] | None = None,
) -> ExchangeClient:
    mode = current_mode()
    if mode is not settings.mode:
        raise _refuse(store, f"wallet for {settings.mode} requested while running in {mode}")
    if mode is TradingMode.DEMO:
        from kestrel.exchange.paper_factory import build_paper_exchange

        return build_paper_exchange(settings, store, feed)
    if settings.exchange not in settings.real_exchange_whitelist:
        raise _refuse(
            store,
            f"exchange {settings.exchange!r} is not on the REAL whitelist "
            f"{settings.real_exchange_whitelist}; refusing to trade",
        )
    import ccxt

    key, secret = credentials or real_credentials(settings.exchange)
    exchange_class = getattr(ccxt, settings.exchange)
    client: ExchangeClient = exchange_class(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": True,
            "timeout": int(settings.paper.network_timeout_s * 1000),
            "options": {"defaultType": "spot"},
        }
    )
    return client
