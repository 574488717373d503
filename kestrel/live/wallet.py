"""Which wallet the live engine trades, and so what it streams, per trading mode.

- REAL: the exchange account. Keys are required; the engine watches the user data stream
  (account events make the order sync run sooner).
- DEMO: the paper exchange (kestrel.exchange.paper), priced by the configured exchange's live
  PUBLIC candles (CcxtLiveFeed, at exchange_api.url when set). No keys and no account stream:
  the paper account changes only when its orders match a closed candle of the feed's matching
  timeframe, so the engine streams that timeframe and runs the sync when one closes. A paper
  feed that is not live (a replay, a simulation) has nothing to stream: the engine refuses it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kestrel.books.wallet import real_credentials
from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError
from kestrel.exchange.ccxt_exchange import ExchangeCredentials
from kestrel.market.base import MarketFeed
from kestrel.market.live import CcxtLiveFeed
from kestrel.mode import TradingMode

__all__ = ["LiveWallet", "live_wallet"]


class LiveWallet(BaseModel):
    """What the engine's streams need for a mode's wallet (credentials never logged)."""

    model_config = ConfigDict(frozen=True)

    mode: TradingMode
    credentials: ExchangeCredentials | None  # None: a public (keyless) stream client
    account_stream: bool
    match_timeframe: str | None  # DEMO: the paper exchange fills on these candles


def live_wallet(settings: KestrelSettings, feed: MarketFeed | None) -> LiveWallet:
    """The wallet of `settings.mode`; `feed` is the DEMO runtime's market feed. ConfigError
    when REAL has no keys, or DEMO's paper market is not live data."""
    if settings.mode is TradingMode.REAL:
        return LiveWallet(
            mode=settings.mode,
            credentials=real_credentials(settings),
            account_stream=True,
            match_timeframe=None,
        )
    if not isinstance(feed, CcxtLiveFeed):
        kind = feed.kind if feed is not None else "none"
        raise ConfigError(
            "the live engine streams from the exchange: in DEMO its paper wallet must be priced "
            f"by live data, not {kind} (set paper.market_data = 'live', or 'auto' with "
            f"{settings.exchange} reachable; point exchange_api.url and exchange_api.ws_url at "
            "the emulator to rehearse)"
        )
    return LiveWallet(
        mode=settings.mode,
        credentials=None,
        account_stream=False,
        match_timeframe=feed.match_timeframe,
    )
