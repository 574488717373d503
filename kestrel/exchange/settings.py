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
LimitFill = Literal["through", "touch"]
FeeMode = Literal["standard", "bnb"]
ProtectionMode = Literal["auto", "native", "monitor"]


class ExchangeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    url: str | None = Field(
        default=None,
        description="override every ccxt API URL with this base, e.g. http://127.0.0.1:8765 "
        "(the emulator); empty: the exchange's own URLs",
    )
    ws_url: str | None = Field(
        default=None,
        description="override the WebSocket stream base (the live engine's ccxt.pro client), "
        "e.g. ws://127.0.0.1:8766 (the emulator); empty: the exchange's own",
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
        "monitor: both watched by the position monitor; auto: native wherever the exchange "
        "lists stop orders (Binance and the paper exchange), else monitor",
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


class PaperFillSettings(BaseModel):
    """How strictly the paper exchange fills orders; the rules are kestrel.exchange.paper_rules
    and docs/paper-exchange.md. Mixed into `paper` settings (KESTREL_PAPER__<FIELD>), next to
    the fee rates and the spread (maker_fee, taker_fee, slippage_bps)."""

    limit_fill: LimitFill = Field(
        default="through",
        description="through: a resting limit fills only when a candle trades beyond it; "
        "touch: also when it only reaches it (kinder than Binance)",
    )
    participation_cap: Decimal | None = Field(
        default=Decimal("0.1"),
        gt=0,
        le=1,
        description="most of a candle's volume the account's orders may take, together; "
        "larger orders fill partially over several candles. Empty: unlimited",
    )
    slippage_impact: Decimal = Field(
        default=Decimal("1"),
        ge=0,
        le=10,
        description="market impact: this share of the candle's high-low range is paid per "
        "unit of the candle's volume taken (on top of slippage_bps)",
    )
    fee_mode: FeeMode = Field(
        default="standard",
        description="standard: buys pay the fee in the base asset, sells in the quote; bnb: "
        "paid in BNB with bnb_discount off when the account holds enough BNB",
    )
    bnb_discount: Decimal = Field(default=Decimal("0.25"), ge=0, lt=1)
    bnb_prices: dict[str, Decimal] = Field(
        default_factory=dict,
        description="the rate BNB fees are charged at: price of 1 BNB per quote currency, "
        "e.g. {USDT = 600}; a pair whose quote has no rate here (and is not a BNB pair) pays "
        "the standard fee",
    )

    @field_validator("bnb_prices")
    @classmethod
    def _positive_prices(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, price in prices.items():
            if price <= 0:
                raise ValueError(f"BNB price in {currency} must be > 0, got {price}")
        return {currency.upper(): price for currency, price in prices.items()}
