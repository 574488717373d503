"""The exchange account as a Prefect block: API key and secret as secrets, for REAL trading.

Kestrel's domain code never imports prefect: the flow layer loads the block named by the
settings (`exchange_api.credentials=block`, `exchange_api.credentials_block`) and registers
its credentials with the wallet factory for this process (`use_exchange_account`). Without a
block, REAL credentials come from KESTREL_<EXCHANGE>_API_KEY / _API_SECRET.
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from kestrel.config.settings import KestrelSettings
from kestrel.exchange.ccxt_exchange import ExchangeCredentials


class ExchangeAccount(Block):
    """API credentials of one exchange account (e.g. Binance spot)."""

    _block_type_name: ClassVar[str] = "Kestrel Exchange Account"
    _block_type_slug: ClassVar[str] = "kestrel-exchange-account"
    _description: ClassVar[str] = (
        "Kestrel's exchange account: ccxt exchange id, API key and secret (secrets)."
    )

    exchange: str = Field(default="binance", description="ccxt exchange id, e.g. binance")
    api_key: SecretStr = Field(description="API key (trading enabled, withdrawals disabled)")
    secret: SecretStr = Field(description="API secret")
    password: SecretStr | None = Field(
        default=None, description="API passphrase, for exchanges that have one"
    )

    def credentials(self) -> ExchangeCredentials:
        return ExchangeCredentials(api_key=self.api_key, secret=self.secret, password=self.password)


def use_exchange_account(settings: KestrelSettings) -> bool:
    """Load the settings' ExchangeAccount block and register its credentials, when the settings
    ask for a block. Returns whether one was registered. Raises if the block is missing or is
    for another exchange (never falls back silently to other credentials)."""
    from kestrel.books.wallet import register_credentials
    from kestrel.errors import ConfigError

    access = settings.exchange_api
    if access.credentials != "block":
        return False
    account = ExchangeAccount.load(access.credentials_block)
    assert isinstance(account, ExchangeAccount)
    if account.exchange.strip().lower() != settings.exchange:
        raise ConfigError(
            f"ExchangeAccount block {access.credentials_block!r} is for {account.exchange}, "
            f"but the settings trade on {settings.exchange}"
        )
    register_credentials(settings.exchange, account.credentials())
    return True
