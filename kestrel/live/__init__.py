"""The live engine's domain: streams (ccxt.pro) with REST fallback, candle-close and
price-tick triggers, once-per-candle claims. No Prefect here: the flow layer (flows/live.py)
supplies what a cycle, a sync and a monitor pass are."""

from kestrel.live.backoff import Backoff
from kestrel.live.candles import CandleBook, Seen, hole
from kestrel.live.claims import CANDLE_MISSED, CandleClaim, candle_key, claim_candle, record_missed
from kestrel.live.client import build_pro_client, point_streams_at
from kestrel.live.dedupe import OrderUpdate, OrderUpdateFilter
from kestrel.live.engine import EngineConfig, EngineHooks, EngineStats, LiveEngine, MarketSource
from kestrel.live.jobs import CoalescedJob
from kestrel.live.protect import levels_from_store, monitor_at
from kestrel.live.recycle import RecycleBound, rss_mb
from kestrel.live.source import CcxtProSource
from kestrel.live.stream import Watchdog, consume
from kestrel.live.ticks import Levels, ProtectionWatch, StreamPricedExchange, levels_of
from kestrel.live.wallet import LiveWallet, live_wallet

__all__ = [
    "CANDLE_MISSED",
    "Backoff",
    "CandleBook",
    "CandleClaim",
    "CcxtProSource",
    "CoalescedJob",
    "EngineConfig",
    "EngineHooks",
    "EngineStats",
    "Levels",
    "LiveEngine",
    "LiveWallet",
    "MarketSource",
    "OrderUpdate",
    "OrderUpdateFilter",
    "ProtectionWatch",
    "RecycleBound",
    "Seen",
    "StreamPricedExchange",
    "Watchdog",
    "build_pro_client",
    "candle_key",
    "claim_candle",
    "consume",
    "hole",
    "levels_from_store",
    "levels_of",
    "live_wallet",
    "monitor_at",
    "point_streams_at",
    "record_missed",
    "rss_mb",
]
