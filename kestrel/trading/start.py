"""The start of a trading cycle: is there market data, and does it know every symbol?

Checked once, before any task runs, so that
- a watchlist symbol or timeframe the data source does not have (FOO/BAR, a replay without
  that file) is a ConfigError naming it, instead of a cycle that "analyses" nothing;
- a run whose prices are unavailable (the live feed or the exchange is down, "auto" found
  neither live nor replay data) stands down: a TRADE_BLOCKED event with the reason code
  BLOCKED_NO_MARKET_DATA says why, and nothing trades on prices nobody observed.

Where the symbols are checked: the exchange's markets (ccxt load_markets) for REAL and for
live paper data, the replay's files for a replay. A simulation asked for by name prices
whatever symbol it is given (benchmarks use synthetic ones); every table names it SIMULATED.
"""

from __future__ import annotations

from dataclasses import dataclass

from kestrel.config.settings import KestrelSettings
from kestrel.errors import MarketDataUnavailable
from kestrel.market.check import check_watchlist, client_of
from kestrel.market.choose import probe
from kestrel.market.live import CcxtLiveFeed
from kestrel.mode import trading_mode
from kestrel.models import Event, EventType, ReasonCode, utcnow
from kestrel.runtime import Runtime, get_runtime


@dataclass(frozen=True)
class CycleStart:
    """What a cycle starts with: its data source, or why it stands down."""

    data_source: str = ""
    stood_down: str | None = None


def start_cycle(settings: KestrelSettings) -> CycleStart:
    """The data source for this cycle, after checking the watchlist against it.

    Raises ConfigError for an unknown symbol or timeframe. Without market data, records the
    stand-down event and returns a CycleStart whose `stood_down` says why."""
    with trading_mode(settings.mode):
        try:
            rt = get_runtime(settings)  # DEMO: checks the watchlist against the feed
            if rt.feed is None:
                check_watchlist(settings, rt.exchange)
            check_live(rt)
        except MarketDataUnavailable as exc:
            record_stand_down(settings, str(exc))
            return CycleStart(stood_down=str(exc))
        return CycleStart(data_source=rt.data_source)


def check_live(rt: Runtime) -> None:
    """MarketDataUnavailable when the live source (the REAL exchange, or the paper feed's
    exchange) does not answer now: a runtime built while it was up is cached, so every cycle
    asks once (one light request) rather than fail symbol by symbol after retries. It gets
    the source's whole request timeout: a slow exchange is not a down one."""
    if rt.feed is None:
        client, timeout_s = client_of(rt.exchange), rt.settings.exchange_api.timeout_s
    elif isinstance(rt.feed, CcxtLiveFeed):
        client, timeout_s = rt.feed.exchange, rt.settings.paper.network_timeout_s
    else:
        return
    why = probe(client, timeout_s)
    if why is not None:
        raise MarketDataUnavailable(f"live data from {client.id} is down ({why})")


def record_stand_down(settings: KestrelSettings, why: str) -> Event:
    """The TRADE_BLOCKED event of a cycle that stands down for lack of market data (one per
    minute at most: a schedule retrying every few seconds does not flood the outbox)."""
    from kestrel.store.router import open_store

    moment = utcnow()
    event = Event(
        event_id=f"market-data:{settings.mode.value}:{moment:%Y%m%dT%H%M}",
        type=EventType.TRADE_BLOCKED,
        mode=settings.mode,
        reasons=[ReasonCode.BLOCKED_NO_MARKET_DATA.value],
        message=f"{ReasonCode.BLOCKED_NO_MARKET_DATA.value}: {why}"[:2000],
        data={
            "action": "HOLD",
            "symbols": [item.symbol for item in settings.watchlist],
            "market_data": settings.paper.market_data,
            "data_source": None,
        },
        created_at=moment,
    )
    store = open_store(settings, settings.mode)
    try:
        store.append_events([event])
    finally:
        store.close()
    return event
