"""Kestrel's settings, from (highest first) explicit overrides, KESTREL_* environment
variables, a TOML config file, then defaults. Invalid values fail at start, naming the field."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kestrel.config.ops import OpsSettings
from kestrel.errors import ConfigError
from kestrel.exchange.settings import ExchangeSettings, PaperFillSettings
from kestrel.mode import TradingMode
from kestrel.models.market import SYMBOL_PATTERN, TIMEFRAME_SECONDS
from kestrel.notify.settings import TelegramSettings
from kestrel.strategy.settings import TradingSettings

CONFIG_ENV = "KESTREL_CONFIG"
DEFAULT_CONFIG_FILE = "kestrel.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class WatchlistItem(_Section):
    symbol: str = Field(description="ccxt unified symbol, e.g. BTC/USDT")
    timeframe: str = "1h"
    trade_enabled: bool = True
    alert_enabled: bool = True
    trade_amount_usd: Decimal = Field(default=Decimal("100"), ge=0)
    stake_amount: Decimal | None = Field(
        default=None,
        gt=0,
        description="stake per entry in stake_currency; replaces "
        "trade_amount_usd (fixed_quote sizing), e.g. 0.002 with stake_currency BTC",
    )
    stake_currency: str | None = Field(
        default=None, description="currency of stake_amount; unset: the pair's quote"
    )
    strategy: str | None = Field(
        default=None, description="strategy preset, e.g. SWING/CONSERVATIVE"
    )

    def stake(self) -> tuple[Decimal, str]:
        """(amount, currency) staked per entry: stake_amount in its currency (the quote by
        default), else trade_amount_usd in USD."""
        if self.stake_amount is None:
            return self.trade_amount_usd, "USD"
        return self.stake_amount, self.stake_currency or self.symbol.partition("/")[2]

    @model_validator(mode="after")
    def _stake_currency_needs_an_amount(self) -> WatchlistItem:
        if self.stake_currency is not None and self.stake_amount is None:
            raise ValueError("stake_currency needs stake_amount (the stake in that currency)")
        return self

    @field_validator("stake_currency")
    @classmethod
    def _currency_shape(cls, value: str | None) -> str | None:
        return value.strip().upper() if value is not None else None

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        value = value.strip().upper()
        if not SYMBOL_PATTERN.match(value):
            raise ValueError("must be a ccxt spot symbol BASE/QUOTE in capitals, e.g. BTC/USDT")
        return value

    @field_validator("timeframe")
    @classmethod
    def _timeframe_known(cls, value: str) -> str:
        if value not in TIMEFRAME_SECONDS:
            raise ValueError(f"must be one of {', '.join(TIMEFRAME_SECONDS)}")
        return value


class PaperSettings(PaperFillSettings, _Section):
    """The simulated exchange: balances, costs, and where its prices come from."""

    quote_currency: str = "USDT"
    starting_balance: Decimal = Field(default=Decimal("10000"), gt=0)
    extra_balances: dict[str, Decimal] = Field(
        default_factory=dict, description="other starting balances, e.g. {BTC = 0.5}"
    )
    maker_fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.05"))
    taker_fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.05"))
    slippage_bps: Decimal = Field(default=Decimal("5"), ge=0, le=500)
    market_data: Literal["auto", "live", "replay", "simulated"] = "auto"
    replay_dir: Path | None = Field(
        default=None, description="folder of <BASE>_<QUOTE>-<tf>.csv candle files to replay"
    )
    seed: int = 7

    @field_validator("extra_balances")
    @classmethod
    def _non_negative(cls, balances: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, amount in balances.items():
            if amount < 0:
                raise ValueError(f"{currency} balance must be >= 0, got {amount}")
        return {currency.upper(): amount for currency, amount in balances.items()}

    def starting_balances(self) -> dict[str, Decimal]:
        return {**self.extra_balances, self.quote_currency: self.starting_balance}

    network_timeout_s: float = Field(default=10.0, gt=0, le=120)


class RiskSettings(_Section):
    min_confidence: float = Field(default=0.55, ge=0, le=1)
    max_open_orders_per_symbol: int = Field(default=3, ge=1)
    max_open_positions: int = Field(default=10, ge=1)
    stale_after_candles: float = Field(default=3.0, gt=0)


class KestrelSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KESTREL_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    mode: TradingMode = TradingMode.DEMO
    data_dir: Path = Field(default=Path(".kestrel"), description="SQLite files, Prefect home, ...")
    store_uri: str | None = Field(
        default=None, description="empty: SQLite under data_dir; or mongodb://host/dbname"
    )
    exchange: str = Field(default="binance", description="ccxt exchange id")
    real_exchange_whitelist: list[str] = Field(default_factory=lambda: ["binance"])
    exchange_api: ExchangeSettings = Field(default_factory=ExchangeSettings)
    watchlist: list[WatchlistItem] = Field(
        default_factory=lambda: [WatchlistItem(symbol="BTC/USDT"), WatchlistItem(symbol="ETH/USDT")]
    )
    paper: PaperSettings = Field(default_factory=PaperSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @field_validator("store_uri")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("mongodb://", "mongodb+srv://", "sqlite:///")):
            raise ValueError(
                "must start with mongodb://, mongodb+srv:// or sqlite:/// (or be empty)"
            )
        return value

    @field_validator("exchange")
    @classmethod
    def _lower_exchange(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("watchlist")
    @classmethod
    def _unique_symbols(cls, items: list[WatchlistItem]) -> list[WatchlistItem]:
        seen: set[str] = set()
        for item in items:
            if item.symbol in seen:
                raise ValueError(f"symbol {item.symbol} appears twice; list each symbol once")
            seen.add(item.symbol)
        return items

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    def watch(self, symbol: str) -> WatchlistItem:
        for item in self.watchlist:
            if item.symbol == symbol:
                return item
        raise KeyError(f"{symbol} is not on the watchlist")


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={explicit}: no such file; point it at a TOML config")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: the field path, the bad value and what is allowed."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(settings)"
        value = problem.get("input")
        shown = "<missing>" if problem["type"] == "missing" else repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"  {field}: got {shown}; {problem['msg']}")
    return "invalid Kestrel settings:\n" + "\n".join(lines)


def load_settings(**overrides: Any) -> KestrelSettings:
    try:
        return KestrelSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
