"""The REAL wallet: a ccxt exchange (Binance spot first) behind Kestrel's ExchangeClient surface.

Why a wrapper and not the bare ccxt object:
- secrets never leave it: every exception ccxt raises is re-raised as the same ccxt class with
  the API key and secret scrubbed from its message (ccxt puts URLs, bodies and sometimes
  headers in messages, and those end up in Prefect logs, events and Telegram);
- it teaches the client the exchange messages that ccxt maps to too broad a class (Binance's
  "Duplicate order sent."), so failures are classified by class alone (kestrel.exchange.errors);
- it knows its mode (always REAL), so a REAL wallet cannot be used by a DEMO run;
- it answers exchange-agnostic questions from ccxt's unified market info: precision (whatever
  the exchange's precisionMode), limits, fees, and whether native stop orders exist.

`url` (ExchangeSettings.url) replaces the scheme and host of every API URL while keeping the
paths, which is how the Binance emulator (`python -m emulator`) or a recording proxy is put
in front.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from kestrel.errors import ConfigError
from kestrel.exchange.base import CcxtDict, OHLCVRow
from kestrel.exchange.errors import teach_ccxt_client
from kestrel.exchange.settings import ExchangeSettings
from kestrel.mode import TradingMode
from kestrel.models import MarketSpec
from kestrel.money import PrecisionMode

StopKind = Literal["market", "limit"]
_REDACTED = "***"
_CCXT_LOGGERS = ("ccxt", "ccxt.base.exchange")


class SecretFilter(logging.Filter):
    """Scrubs registered secrets from log records. ccxt's DEBUG log prints request headers,
    the API key among them; installed on ccxt's loggers whenever a CcxtExchange is built."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: list[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if not secrets:
            return True
        message = record.getMessage()
        clean = message
        for secret in secrets:
            clean = clean.replace(secret, _REDACTED)
        if clean != message:
            record.msg, record.args = clean, None
        return True


SECRET_FILTER = SecretFilter()


def _install_filter(secrets: list[str]) -> None:
    SECRET_FILTER.add(secrets)
    for name in _CCXT_LOGGERS:
        logger = logging.getLogger(name)
        if SECRET_FILTER not in logger.filters:
            logger.addFilter(SECRET_FILTER)


class ExchangeCredentials(BaseModel):
    """An API key pair. SecretStr: repr(), logs and model dumps show '**********'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None

    def secrets(self) -> list[str]:
        values = [self.api_key.get_secret_value(), self.secret.get_secret_value()]
        if self.password is not None:
            values.append(self.password.get_secret_value())
        return [v for v in values if v]


def _ccxt_options(exchange_id: str, settings: ExchangeSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"defaultType": "spot", "recvWindow": settings.recv_window_ms}
    if exchange_id.startswith("binance"):
        # Spot only: load_markets then costs one exchangeInfo call instead of five endpoints.
        options["fetchMarkets"] = {"types": ["spot"]}
        options["fetchMargins"] = False
        options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        if settings.url is not None:
            # The emulator (or a proxy) serves the spot REST API only: no sapi currencies,
            # and its clock is ours.
            options["fetchCurrencies"] = False
            options["adjustForTimeDifference"] = False
    return options


def point_at(client: Any, base_url: str) -> None:
    """Send every API request of `client` to `base_url`, keeping the paths."""
    base = base_url.rstrip("/")

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return base + urlsplit(value).path
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        return value

    client.urls["api"] = rewrite(client.urls["api"])


def build_ccxt_client(
    exchange_id: str, settings: ExchangeSettings, credentials: ExchangeCredentials
) -> Any:
    import ccxt

    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None or not isinstance(exchange_class, type):
        raise ConfigError(f"exchange {exchange_id!r} is not a ccxt exchange id")
    config: dict[str, Any] = {
        "apiKey": credentials.api_key.get_secret_value(),
        "secret": credentials.secret.get_secret_value(),
        "enableRateLimit": settings.rate_limit,
        "timeout": int(settings.timeout_s * 1000),
        "options": _ccxt_options(exchange_id, settings),
    }
    if credentials.password is not None:
        config["password"] = credentials.password.get_secret_value()
    client = exchange_class(config)
    if settings.url is not None:
        point_at(client, settings.url)
    return client


class CcxtExchange:
    """ExchangeClient over a ccxt exchange instance; REAL mode only."""

    mode = TradingMode.REAL

    def __init__(self, client: Any, secrets: list[str] | None = None) -> None:
        self._client = client
        self._secrets = [s for s in (secrets or []) if s]
        self.id: str = str(client.id)
        _install_filter(self._secrets)
        teach_ccxt_client(client)

    @classmethod
    def connect(
        cls, exchange_id: str, settings: ExchangeSettings, credentials: ExchangeCredentials
    ) -> CcxtExchange:
        return cls(build_ccxt_client(exchange_id, settings, credentials), credentials.secrets())

    def __repr__(self) -> str:
        return f"CcxtExchange({self.id})"

    @property
    def client(self) -> Any:
        """The ccxt instance (for tests and exchange-specific calls); holds the secrets."""
        return self._client

    # -- secrecy -------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            message = str(exc)
            clean = self.scrub(message)
            if clean == message:
                raise
            try:
                replacement = type(exc)(clean)
            except Exception:  # an exception class with another signature
                replacement = RuntimeError(f"{type(exc).__name__}: {clean}")
            raise replacement from None

    # -- markets -------------------------------------------------------------------------------
    @property
    def markets(self) -> dict[str, CcxtDict]:
        return dict(self._client.markets or {})

    @property
    def has(self) -> dict[str, Any]:
        return dict(self._client.has)

    def load_markets(self, reload: bool = False) -> dict[str, CcxtDict]:
        with self._guard():
            return dict(self._client.load_markets(reload))

    def market(self, symbol: str) -> CcxtDict:
        with self._guard():
            if not self._client.markets:
                self._client.load_markets()
            return dict(self._client.market(symbol))

    @property
    def precisionMode(self) -> int:  # ccxt's name, so market_spec reads both alike
        """How the markets' precision numbers count (ccxt DECIMAL_PLACES, SIGNIFICANT_DIGITS or
        TICK_SIZE): MarketSpec needs it to read precision.amount / precision.price."""
        return int(self._client.precisionMode)

    def market_spec(self, symbol: str) -> MarketSpec:
        return market_spec(self, symbol)

    def amount_to_precision(self, symbol: str, amount: float | Decimal | str) -> str:
        with self._guard():
            return str(self._client.amount_to_precision(symbol, str(amount)))

    def price_to_precision(self, symbol: str, price: float | Decimal | str) -> str:
        with self._guard():
            return str(self._client.price_to_precision(symbol, str(price)))

    def native_stop_kind(self, symbol: str) -> StopKind | None:
        return native_stop_kind(self, symbol)

    # -- market data ---------------------------------------------------------------------------
    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[OHLCVRow]:
        with self._guard():
            return list(self._client.fetch_ohlcv(symbol, timeframe, since, limit, params or {}))

    def fetch_ticker(self, symbol: str, params: CcxtDict | None = None) -> CcxtDict:
        with self._guard():
            return dict(self._client.fetch_ticker(symbol, params or {}))

    def fetch_balance(self, params: CcxtDict | None = None) -> CcxtDict:
        with self._guard():
            return dict(self._client.fetch_balance(params or {}))

    # -- orders --------------------------------------------------------------------------------
    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: CcxtDict | None = None,
    ) -> CcxtDict:
        with self._guard():
            return dict(self._client.create_order(symbol, type, side, amount, price, params or {}))

    def fetch_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        with self._guard():
            return dict(self._client.fetch_order(id, symbol, params or {}))

    def cancel_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        with self._guard():
            return dict(self._client.cancel_order(id, symbol, params or {}))

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        with self._guard():
            return list(self._client.fetch_open_orders(symbol, since, limit, params or {}))

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        with self._guard():
            return list(self._client.fetch_closed_orders(symbol, since, limit, params or {}))

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        with self._guard():
            return list(self._client.fetch_my_trades(symbol, since, limit, params or {}))


# -- exchange-agnostic helpers (work on ccxt instances, CcxtExchange and PaperExchange) ---------


def market_spec(exchange: Any, symbol: str) -> MarketSpec:
    """The market's rules as a MarketSpec, from ccxt's unified market structure read in the
    exchange's precisionMode (the paper exchange has none: it uses tick sizes, as Binance)."""
    mode = getattr(exchange, "precisionMode", PrecisionMode.TICK_SIZE)
    return MarketSpec.from_ccxt(exchange.market(symbol), precision_mode=mode)


def native_stop_kind(exchange: Any, symbol: str) -> StopKind | None:
    """Which native stop-loss order the market takes: a stop-market ("market": Binance
    STOP_LOSS), a stop-limit ("limit": STOP_LOSS_LIMIT), or none (watch it ourselves).

    Binance lists order types per market (info.orderTypes); other exchanges are judged by
    ccxt's `features` (createOrder.stopLossPrice / triggerPrice) for spot."""
    market = exchange.market(symbol)
    info = market.get("info") or {}
    listed = info.get("orderTypes") if isinstance(info, dict) else None
    if isinstance(listed, list):
        if "STOP_LOSS" in listed:
            return "market"
        if "STOP_LOSS_LIMIT" in listed:
            return "limit"
        return None
    client = getattr(exchange, "client", exchange)
    features = getattr(client, "features", None) or {}
    spot = features.get("spot") if isinstance(features, dict) else None
    create = (spot or {}).get("createOrder") if isinstance(spot, dict) else None
    if isinstance(create, dict) and (create.get("stopLossPrice") or create.get("triggerPrice")):
        return "market"
    has = getattr(exchange, "has", None) or {}
    if has.get("createStopMarketOrder") or has.get("createStopLossOrder"):
        return "market"
    return None
