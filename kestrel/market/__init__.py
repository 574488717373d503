"""Market data feeds: live ccxt candles, CSV replays and a seeded simulation, one protocol.

`choose_feed(settings, store, symbols)` picks one from the settings; everything else asks the
feed for candles and for "now".
"""

from kestrel.market.base import DEFAULT_LIMIT, FeedKind, MarketFeed
from kestrel.market.choose import choose_feed, probe
from kestrel.market.clock import STATE_KEY as CLOCK_STATE_KEY
from kestrel.market.clock import MarketClock
from kestrel.market.csvfile import find_replay_files, parse_candle_filename, read_candle_csv
from kestrel.market.live import CcxtLiveFeed
from kestrel.market.replay import ReplayFeed
from kestrel.market.simulated import SimulatedFeed

__all__ = [
    "CLOCK_STATE_KEY",
    "DEFAULT_LIMIT",
    "CcxtLiveFeed",
    "FeedKind",
    "MarketClock",
    "MarketFeed",
    "ReplayFeed",
    "SimulatedFeed",
    "choose_feed",
    "find_replay_files",
    "parse_candle_filename",
    "probe",
    "read_candle_csv",
]
