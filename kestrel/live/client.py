"""The live engine's ccxt.pro client, built from the same settings and credentials as the
REST one (kestrel.exchange.ccxt_exchange), with `exchange_api.ws_url` for the streams.
Without credentials (DEMO) it is a public client: market streams and REST candles only."""

from __future__ import annotations

from typing import Any

from kestrel.errors import ConfigError
from kestrel.exchange.ccxt_exchange import ExchangeCredentials, _ccxt_options, point_at
from kestrel.exchange.settings import ExchangeSettings

__all__ = ["build_pro_client", "point_streams_at"]


def point_streams_at(client: Any, ws_url: str) -> None:
    """Binance spot streams under `<ws_url>/ws`, its WebSocket API at `<ws_url>/ws-api/v3`."""
    base = ws_url.rstrip("/")
    ws = dict(client.urls["api"].get("ws") or {})
    for kind in ("spot", "margin"):
        ws[kind] = base + "/ws"
    ws["ws-api"] = {**(ws.get("ws-api") or {}), "spot": base + "/ws-api/v3"}
    client.urls["api"]["ws"] = ws


def build_pro_client(
    exchange_id: str, settings: ExchangeSettings, credentials: ExchangeCredentials | None
) -> Any:
    """An async `ccxt.pro` client; its owner must `await client.close()`. `credentials`
    None: keyless, for public data only (no account stream, no order)."""
    import ccxt.pro

    exchange_class = getattr(ccxt.pro, exchange_id, None)
    if exchange_class is None or not isinstance(exchange_class, type):
        raise ConfigError(f"exchange {exchange_id!r} has no ccxt.pro (WebSocket) client")
    config: dict[str, Any] = {
        "enableRateLimit": settings.rate_limit,
        "timeout": int(settings.timeout_s * 1000),
        "options": _ccxt_options(exchange_id, settings),
    }
    if credentials is not None:
        config["apiKey"] = credentials.api_key.get_secret_value()
        config["secret"] = credentials.secret.get_secret_value()
    client = exchange_class(config)
    if settings.url is not None:
        ws = client.urls["api"].get("ws")
        point_at(client, settings.url)
        client.urls["api"]["ws"] = ws  # REST rewritten; streams are set apart
    if settings.ws_url is not None:
        point_streams_at(client, settings.ws_url)
    return client
