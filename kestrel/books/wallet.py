"""The wallet factory: which exchange a mode may trade on.

DEMO -> the paper exchange, always, whatever `settings.exchange` says. REAL -> a ccxt exchange,
only if it is on the REAL whitelist (default deny: anything else is a SecurityError and a
SECURITY event, never an order), with credentials from the environment
(KESTREL_<EXCHANGE>_API_KEY / _API_SECRET) or an ExchangeAccount Prefect block that the flow
layer loads and registers here (kestrel never imports prefect).

A wallet knows its mode (`wallet_mode`). Settings whose mode differs from the current mode,
and a wallet used under another mode, are refused with a SECURITY event
(`check_wallet_mode`, which `kestrel.execution.orders.place` calls before every order).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, SecurityError
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.ccxt_exchange import CcxtExchange, ExchangeCredentials
from kestrel.mode import TradingMode, current_mode
from kestrel.models import Event, EventType, utcnow
from kestrel.store.base import Store

if TYPE_CHECKING:
    from kestrel.market import MarketFeed


_registered: dict[str, ExchangeCredentials] = {}
_registered_lock = threading.Lock()


def register_credentials(exchange_id: str, credentials: ExchangeCredentials) -> None:
    """Credentials loaded by the flow layer (e.g. from an ExchangeAccount block) for this
    process; they win over the environment."""
    with _registered_lock:
        _registered[exchange_id.lower()] = credentials


def forget_credentials() -> None:
    with _registered_lock:
        _registered.clear()


def refuse(store: Store, message: str, **data: Any) -> SecurityError:
    """Record a SECURITY event (in the store's own mode: a mode-bound store refuses records
    of the other one) and return the error to raise."""
    declared = getattr(store, "mode", None)
    mode = declared if isinstance(declared, TradingMode) else current_mode()
    store.append_events(
        [
            Event(
                event_id=f"security:{utcnow().isoformat()}:{abs(hash(message)) % 10**8}",
                type=EventType.SECURITY,
                mode=mode,
                message=message,
                data=data,
            )
        ]
    )
    return SecurityError(message)


def env_credentials(exchange_id: str) -> ExchangeCredentials | None:
    prefix = f"KESTREL_{exchange_id.upper()}_"
    key, secret = os.environ.get(prefix + "API_KEY"), os.environ.get(prefix + "API_SECRET")
    if not key or not secret:
        return None
    password = os.environ.get(prefix + "API_PASSWORD") or None
    return ExchangeCredentials.model_validate(
        {"api_key": key, "secret": secret, "password": password}
    )


def real_credentials(settings: KestrelSettings) -> ExchangeCredentials:
    """Registered (block) credentials, else the environment; never logged."""
    exchange_id = settings.exchange
    with _registered_lock:
        registered = _registered.get(exchange_id)
    if registered is not None:
        return registered
    if settings.exchange_api.credentials == "block":
        raise ConfigError(
            f"credentials=block but no ExchangeAccount block "
            f"{settings.exchange_api.credentials_block!r} was loaded for {exchange_id}: "
            "run through the Prefect flows (they load it) or use credentials=env"
        )
    found = env_credentials(exchange_id)
    if found is None:
        prefix = f"KESTREL_{exchange_id.upper()}_"
        raise ConfigError(
            f"REAL trading on {exchange_id} needs {prefix}API_KEY and {prefix}API_SECRET "
            "in the environment, or exchange_api.credentials=block with an ExchangeAccount block"
        )
    return found


def wallet_mode(exchange: object) -> TradingMode:
    """The mode a wallet belongs to. Unknown objects (a bare ccxt client) count as REAL: they
    can move real money."""
    declared = getattr(exchange, "mode", None)
    if isinstance(declared, TradingMode):
        return declared
    if getattr(exchange, "id", None) == "paper":
        return TradingMode.DEMO
    return TradingMode.REAL


def check_wallet_mode(store: Store, exchange: object, what: str) -> None:
    """Refuse to act through a wallet of another mode than the current one."""
    mode, wallet = current_mode(), wallet_mode(exchange)
    if mode is not wallet:
        raise refuse(
            store,
            f"{what}: a {wallet} wallet ({getattr(exchange, 'id', '?')}) used while running "
            f"in {mode}; refused",
            wallet_mode=wallet.value,
        )


def build_exchange(
    settings: KestrelSettings,
    store: Store,
    *,
    feed: MarketFeed | None = None,
    credentials: ExchangeCredentials | None = None,
) -> ExchangeClient:
    mode = current_mode()
    if mode is not settings.mode:
        raise refuse(store, f"wallet for {settings.mode} requested while running in {mode}")
    if mode is TradingMode.DEMO:
        from kestrel.exchange.paper_factory import build_paper_exchange

        return build_paper_exchange(settings, store, feed)
    whitelist = [name.strip().lower() for name in settings.real_exchange_whitelist]
    if settings.exchange not in whitelist:
        raise refuse(
            store,
            f"exchange {settings.exchange!r} is not on the REAL whitelist "
            f"{settings.real_exchange_whitelist}; refusing to trade",
            exchange=settings.exchange,
        )
    creds = credentials or real_credentials(settings)
    return CcxtExchange.connect(settings.exchange, settings.exchange_api, creds)
