"""Picking the market data source from settings: live, replay or simulated.

"auto" prefers live data, but only if the exchange answers a cheap request within a short,
hard bound (a laptop without network must not hang in DNS or TCP timeouts), then replay
files. It never picks the simulation: invented prices are used only when asked for by name
(`market_data = "simulated"`, or `kestrel demo` without replay data), because a paper run
that silently traded on them would look like a real result. Without live or replay data,
"auto" raises MarketDataUnavailable and the cycle stands down saying why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kestrel.config.settings import KestrelSettings, PaperSettings
from kestrel.errors import ConfigError, MarketDataUnavailable
from kestrel.market.base import MarketFeed
from kestrel.market.csvfile import replay_files
from kestrel.market.live import CcxtLiveFeed, make_exchange
from kestrel.market.replay import DEFAULT_WARMUP, ReplayFeed
from kestrel.market.simulated import SimulatedFeed
from kestrel.models import timeframe_ms
from kestrel.store.base import Store

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 3.0


def probe(exchange: Any, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the exchange answered `fetch_time` within `timeout_s`, else why not.

    The request runs in a daemon thread and we wait at most `timeout_s` for it: ccxt's own
    timeout does not cover DNS resolution, which can block far longer when offline.
    """
    outcome: dict[str, str | None] = {}
    previous_timeout = exchange.timeout
    exchange.timeout = max(1, int(timeout_s * 1000))

    def ask() -> None:
        try:
            exchange.fetch_time()
            outcome["error"] = None
        except Exception as exc:  # any failure means "not usable now"
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=ask, name=f"probe-{exchange.id}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return f"no answer from {exchange.id} within {timeout_s:g}s"
    exchange.timeout = previous_timeout
    return outcome.get("error", "probe did not run")


def choose_feed(
    settings: KestrelSettings | PaperSettings,
    store: Store,
    symbols: Sequence[str],
    *,
    timeframe: str | None = None,
    exchange: Any = None,
    probe_timeout_s: float = PROBE_TIMEOUT_S,
    warmup: int = DEFAULT_WARMUP,
) -> MarketFeed:
    """The feed `settings.market_data` asks for ("live" | "replay" | "simulated" | "auto").

    `settings` may be the whole KestrelSettings (exchange id and each symbol's watchlist
    timeframe come from it) or just PaperSettings. `timeframe` overrides the timeframe of
    every symbol (default 1h without a watchlist). `exchange` overrides the ccxt client (an id
    or an instance).
    auto: live if the exchange answers within `probe_timeout_s`, else replay if replay_dir has
    a file for every symbol, else MarketDataUnavailable saying why (never simulated).
    """
    paper = settings.paper if isinstance(settings, KestrelSettings) else settings
    timeframes = _timeframes(settings, symbols, timeframe)
    source = paper.market_data
    if source in ("live", "auto") and exchange is None:
        exchange = _public_client(settings, paper)

    if source == "live":
        return CcxtLiveFeed(exchange, timeout_s=paper.network_timeout_s)
    if source == "replay":
        if paper.replay_dir is None:
            raise ConfigError(
                "paper.market_data = 'replay' needs paper.replay_dir (a folder of CSVs)"
            )
        return ReplayFeed.from_dir(
            paper.replay_dir, store, symbols, timeframe=timeframes, warmup=warmup
        )
    if source == "simulated":
        return _simulated(paper, store, timeframes, warmup)

    client = (
        make_exchange(exchange, paper.network_timeout_s) if isinstance(exchange, str) else exchange
    )
    why_not_live = probe(client, min(probe_timeout_s, paper.network_timeout_s))
    if why_not_live is None:
        log.info("market data: live from %s", client.id)
        return CcxtLiveFeed(client, timeout_s=paper.network_timeout_s)
    if paper.replay_dir is not None:
        files = replay_files(paper.replay_dir, timeframes)
        if all(s in files for s in symbols):
            log.warning("market data: replay from %s (%s)", paper.replay_dir, why_not_live)
            return ReplayFeed(files, store, warmup=warmup)
        why_not_replay = f"{paper.replay_dir} lacks files for " + ", ".join(
            f"{s} {timeframes[s]}" for s in symbols if s not in files
        )
    else:
        why_not_replay = "no paper.replay_dir"
    raise MarketDataUnavailable(
        f"no market data: live {client.id} unavailable ({why_not_live}); replay: "
        f"{why_not_replay}. Paper trading does not switch to invented prices: restore the "
        "network, give replay files, or set paper.market_data = 'simulated' to trade on a "
        "SIMULATED market by name"
    )


def _public_client(settings: KestrelSettings | PaperSettings, paper: PaperSettings) -> Any:
    """The keyless ccxt client of the configured exchange, with the REAL wallet's options
    (spot markets only) and at exchange_api.url when one is set (the Binance emulator, a
    proxy): the paper market reads what the REAL one would."""
    if not isinstance(settings, KestrelSettings):
        return "binance"
    from kestrel.exchange.ccxt_exchange import _ccxt_options, point_at

    options = _ccxt_options(settings.exchange, settings.exchange_api)
    client = make_exchange(settings.exchange, paper.network_timeout_s, {"options": options})
    if settings.exchange_api.url is not None:
        point_at(client, settings.exchange_api.url)
    return client


def _simulated(
    paper: PaperSettings, store: Store, timeframes: Mapping[str, str], warmup: int
) -> SimulatedFeed:
    """One simulated timeframe for all: the finest asked for (coarser ones are aggregated)."""
    finest = min(timeframes.values(), key=timeframe_ms, default="1h")
    return SimulatedFeed(store, list(timeframes), seed=paper.seed, timeframe=finest, warmup=warmup)


def _timeframes(
    settings: KestrelSettings | PaperSettings, symbols: Sequence[str], timeframe: str | None
) -> dict[str, str]:
    """symbol -> the timeframe it is analysed on: explicit, else its watchlist entry, else 1h."""
    listed = (
        {item.symbol: item.timeframe for item in settings.watchlist}
        if isinstance(settings, KestrelSettings)
        else {}
    )
    return {s: timeframe or listed.get(s, "1h") for s in symbols}
