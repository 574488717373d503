"""Exchange access settings: where the REAL exchange is, how credentials are found, timeouts,
and how orders are protected and kept in sync. Nested in KestrelSettings as `exchange_api`,
so the environment spells them KESTREL_EXCHANGE_API__<FIELD> (e.g. KESTREL_EXCHANGE_API__URL
to point ccxt at the Binance emulator).

Credentials are never settings: settings travel as Prefect flow parameters and end up in the
UI and logs. They come from the environment (KESTREL_<EXCHANGE>_API_KEY / _API_SECRET) or an
ExchangeAccount Prefect block (blocks/exchange_account.py), loaded by the flow layer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CredentialSource = Literal["env", "block"]
ProtectionMode = Literal["auto", "native", "monitor"]


class ExchangeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    url: str | None = Field(
        default=None,
        description="override every ccxt API URL with this base, e.g. http://127.0.0.1:8765 "
        "(the emulator); empty: the exchange's own URLs",
    )
    credentials: CredentialSource = Field(
        default="env",
        description="env: KESTREL_<EXCHANGE>_API_KEY/_API_SECRET; block: an ExchangeAccount block",
    )
    credentials_block: str = Field(
        default="kestrel-exchange", description="ExchangeAccount block name (credentials=block)"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="per HTTP request")
    rate_limit: bool = Field(default=True, description="ccxt's client-side request throttling")
    recv_window_ms: int = Field(default=10_000, ge=1_000, le=60_000)
    intent_grace_s: float = Field(
        default=300.0,
        gt=0,
        description="an intent never seen by the exchange after this long is marked FAILED",
    )
    protection: ProtectionMode = Field(
        default="auto",
        description="native: stop-loss as an exchange stop order, take-profit watched; "
        "monitor: both watched by the position monitor; auto: native on real exchanges "
        "that list stop orders, monitor on the paper exchange",
    )
    stop_limit_offset_pct: Decimal = Field(
        default=Decimal("0.005"),
        ge=0,
        lt=Decimal("0.2"),
        description="limit price below the stop when only STOP_LOSS_LIMIT exists",
    )
    sltp_failsafe: bool = Field(
        default=True, description="on SLTP_FAILED also raise a CRITICAL event saying what to do"
    )
    sync_poll_s: float = Field(default=2.0, gt=0, le=60, description="order-sync poll interval")
    sync_window_s: float = Field(
        default=50.0, ge=0, le=600, description="how long one order-sync run keeps polling"
    )
    monitor_poll_s: float = Field(default=5.0, gt=0, le=300)
    monitor_window_s: float = Field(default=50.0, ge=0, le=600)
    lock_timeout_s: float = Field(
        default=30.0, gt=0, description="wait for the one-at-a-time lock before giving up"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value
