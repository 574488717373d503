"""Does the market data source know every symbol and timeframe of the watchlist? A symbol it
does not have is a ConfigError naming it (with close matches), before any task runs."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, MarketDataUnavailable, TransientExchangeError
from kestrel.market.base import MarketFeed
from kestrel.market.live import CcxtLiveFeed, translate
from kestrel.market.replay import ReplayFeed


def check_watchlist(settings: KestrelSettings, source: Any) -> None:
    """ConfigError naming every watchlist symbol / timeframe that `source` (a market feed, or
    the REAL exchange) lacks; MarketDataUnavailable when its markets cannot be read now."""
    known = known_markets(settings, source)
    if known is None:
        return
    symbols, timeframes, where = known
    problems: list[str] = []
    for item in settings.watchlist:
        if item.symbol not in symbols:
            close = difflib.get_close_matches(item.symbol, sorted(symbols), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"{item.symbol} is not a market of {where}{hint}")
        elif timeframes is not None and item.timeframe not in timeframes:
            problems.append(
                f"{item.symbol}: timeframe {item.timeframe} is not offered by {where} "
                f"(it has {', '.join(timeframes)})"
            )
    if problems:
        raise ConfigError(
            "watchlist: " + "; ".join(problems) + ". Fix the watchlist (kestrel.toml, "
            "KESTREL_WATCHLIST, `kestrel settings watch-remove`); nothing was analysed or placed"
        )


def known_markets(
    settings: KestrelSettings, source: Any
) -> tuple[set[str], Collection[str] | None, str] | None:
    """(symbols, timeframes or None for any, where) of `source`; None when any symbol goes
    (a simulation asked for by name)."""
    if isinstance(source, CcxtLiveFeed):
        where = f"{source.exchange.id} (live data)"
        return _exchange_markets(source.exchange, where, source.exchange)
    if isinstance(source, ReplayFeed):
        files = ", ".join(path.name for path in source.files.values())
        return set(source.files), None, f"the replay ({files})"
    if isinstance(source, MarketFeed):
        return None
    return _exchange_markets(source, settings.exchange, client_of(source))


def client_of(exchange: Any) -> Any:
    return getattr(exchange, "client", exchange)


def _exchange_markets(
    exchange: Any, where: str, client: Any
) -> tuple[set[str], Collection[str] | None, str]:
    try:
        markets = exchange.load_markets()
    except Exception as exc:
        translated = translate(where, exc)
        if isinstance(translated, TransientExchangeError):
            raise MarketDataUnavailable(
                f"cannot read the markets of {where}: {translated}; the cycle stands down"
            ) from None
        raise
    spot = {
        symbol
        for symbol, market in markets.items()
        if market.get("spot", True) and market.get("active") is not False
    }
    timeframes = getattr(client, "timeframes", None)
    return spot, (list(timeframes) if isinstance(timeframes, dict) and timeframes else None), where
