"""What a backtest runs: the live settings (KestrelSettings, as saved) plus a BacktestSpec.

The spec only says what differs from live trading: which candles (a CSV folder, symbols,
timeframe, date range), the stake, the fees and the starting balances. Everything else -
strategy, risk gates, protection, trailing stops - comes from the same KestrelSettings the
live cycle reads, so a saved live config backtests as is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kestrel.config.settings import KestrelSettings, WatchlistItem, load_settings
from kestrel.mode import TradingMode
from kestrel.models import timeframe_ms

DEFAULT_WARMUP = 200


class BacktestSpec(BaseModel):
    """The backtest's own inputs; None means "as the settings say"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(description="folder of <BASE>_<QUOTE>-<tf>.csv candle files")
    symbols: list[str] | None = Field(
        default=None, description="default: the settings' watchlist symbols"
    )
    timeframe: str | None = Field(
        default=None, description="the analysis timeframe of every symbol (default: watchlist's)"
    )
    start: datetime | None = Field(
        default=None, description="first cycle at/after this (UTC); default: after the warm-up"
    )
    end: datetime | None = Field(default=None, description="last candle before this (UTC)")
    stake_amount: Decimal | None = Field(default=None, gt=0, description="per trade")
    stake_currency: str | None = Field(
        default=None, description="currency of stake_amount (default: each pair's quote)"
    )
    taker_fee: Decimal | None = Field(default=None, ge=0, lt=Decimal("0.05"))
    maker_fee: Decimal | None = Field(default=None, ge=0, lt=Decimal("0.05"))
    starting_balances: dict[str, Decimal] | None = Field(
        default=None, description="currency -> amount; default: paper.starting_balances()"
    )
    warmup: int = Field(
        default=DEFAULT_WARMUP, ge=1, le=100_000, description="candles of history before start"
    )
    detail: bool = Field(
        default=True, description="fill on the finest candles present (e.g. 1m under 5m)"
    )
    fast: bool = Field(
        default=True,
        description="skip order sync, protection and monitor passes while nothing is open",
    )
    strategy: str | None = Field(
        default=None,
        description="every symbol's strategy: a built-in profile (e.g. SCALP/AGGRESSIVE), a "
        "plugin (pkg.mod:Class) or an installed entry point; default: the settings'",
    )
    precompute: bool = Field(
        default=True,
        description="indicators computed once per series and read by candle position: the "
        "values of an analysis over every loaded candle up to the step (as full_history)",
    )
    full_history: bool = Field(
        default=False,
        description="each step analyzes every loaded candle up to it instead of the live "
        "cycle's last 200 (what the precomputed indicators equal; slow, for checking)",
    )
    currency: str | None = Field(
        default=None, description="what equity is valued in (default: the first symbol's quote)"
    )
    label: str = Field(default="", max_length=200)
    recordings: Path | None = Field(
        default=None,
        description="JSON-lines file of recorded LLM / sentiment answers to replay, as "
        "`kestrel backtest recordings` exports them from a live store (docs/backtest.md)",
    )
    on_missing_answer: Literal["hold", "error"] = Field(
        default="hold",
        description="an LLM / sentiment answer not recorded: 'hold' abstains (kind "
        "no_recording), 'error' stops the backtest naming the analyst, symbol and candle",
    )

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                timeframe_ms(value)
            except ValueError:
                raise ValueError(f"unknown timeframe {value!r} (e.g. 1m, 5m, 1h, 1d)") from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("starting_balances")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        for currency, amount in (value or {}).items():
            if amount < 0:
                raise ValueError(f"starting balance of {currency} is negative ({amount})")
        return value

    @model_validator(mode="after")
    def _ordered_range(self) -> BacktestSpec:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"empty range: end {self.end} is not after start {self.start}")
        return self

    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int | None:
        return None if self.end is None else int(self.end.timestamp() * 1000)


def backtest_settings(settings: KestrelSettings, spec: BacktestSpec) -> KestrelSettings:
    """The live settings with the spec applied: DEMO (a backtest never touches an exchange
    account), replayed market data from the spec's folder, its symbols, stake and fees."""
    watchlist = list(settings.watchlist)
    if spec.symbols is not None:
        known = {item.symbol: item for item in watchlist}
        watchlist = [known.get(s) or WatchlistItem(symbol=s) for s in spec.symbols]
    items: list[dict[str, Any]] = []
    for item in watchlist:
        update: dict[str, Any] = {}
        if spec.timeframe is not None:
            update["timeframe"] = spec.timeframe
        if spec.strategy is not None:
            update["strategy"] = spec.strategy
        if spec.stake_amount is not None:
            update["stake_amount"] = spec.stake_amount
            update["stake_currency"] = spec.stake_currency
        items.append({**item.model_dump(), **update})
    paper: dict[str, Any] = {
        **settings.paper.model_dump(),
        "market_data": "replay",
        "replay_dir": spec.data_dir,
    }
    if spec.taker_fee is not None:
        paper["taker_fee"] = spec.taker_fee
    if spec.maker_fee is not None:
        paper["maker_fee"] = spec.maker_fee
    data = settings.model_dump()
    data.update(mode=TradingMode.DEMO, watchlist=items, paper=paper, store_uri=None)
    return load_settings(**data)


def starting_balances(settings: KestrelSettings, spec: BacktestSpec) -> dict[str, Decimal]:
    if spec.starting_balances is not None:
        return dict(spec.starting_balances)
    return settings.paper.starting_balances()
