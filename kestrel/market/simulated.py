"""A built-in, seeded market: geometric Brownian motion that switches between regimes.

Used when there is neither a network nor replay data, so a demo still trades: trending
regimes give trend strategies something to follow, ranges and crashes give risk rules
something to do. Same seed, symbol and timeframe -> the very same candles, in every process.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from kestrel.market.base import FeedKind
from kestrel.market.clock import Cursor
from kestrel.market.cursor import CursorFeed, Track
from kestrel.models import Candle, timeframe_ms
from kestrel.store.base import Store

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: a fixed epoch keeps runs reproducible
_CHUNK = 512

# Rough USD prices so simulated symbols look familiar; unknown assets get a seeded price.
USD_PRICES: dict[str, float] = {
    "BTC": 42_000.0, "ETH": 2_300.0, "BNB": 310.0, "SOL": 100.0, "XRP": 0.6, "ADA": 0.5,
    "DOGE": 0.09, "LTC": 70.0, "DOT": 7.0, "AVAX": 35.0, "LINK": 15.0, "TRX": 0.11,
    "MATIC": 0.8, "DASH": 30.0, "XMR": 160.0, "ZEC": 25.0, "XLM": 0.12, "NXT": 0.002,
    "POWR": 0.3, "USDT": 1.0, "USDC": 1.0, "BUSD": 1.0, "FDUSD": 1.0, "TUSD": 1.0, "DAI": 1.0,
    "USD": 1.0, "EUR": 1.08,
}  # fmt: skip


@dataclass(frozen=True)
class Regime:
    name: str
    drift: float  # mean log return per hour
    vol: float  # std of log return per hour
    min_hours: int
    max_hours: int


REGIMES = (
    Regime("bull", 0.0012, 0.006, 48, 240),
    Regime("bear", -0.0012, 0.008, 48, 200),
    Regime("range", 0.0, 0.004, 48, 300),
    Regime("crash", -0.006, 0.02, 6, 24),
)
_REGIME_WEIGHTS = (0.34, 0.28, 0.33, 0.05)


def _stable_int(*parts: object) -> int:
    """A seed that, unlike hash(), is the same in every process."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _usd(asset: str) -> float:
    if asset in USD_PRICES:
        return USD_PRICES[asset]
    return 1.0 + _stable_int("price", asset) % 10_000 / 100.0


def start_price(symbol: str) -> float:
    base, _, quote = symbol.partition("/")
    return _usd(base) / _usd(quote or "USDT")


def _sig(value: float) -> float:
    """8 significant digits, so prices print (and convert to Decimal) like exchange prices."""
    return float(f"{value:.8g}")


class _Generator:
    """Extends one symbol's candle list on demand; deterministic in (seed, symbol, timeframe)."""

    def __init__(self, seed: int, symbol: str, timeframe: str) -> None:
        self._rng = random.Random(_stable_int(seed, symbol, timeframe))
        self._hours = timeframe_ms(timeframe) / 3_600_000
        self._price = start_price(symbol)
        # about 1M USD traded per hour, in base units
        self._unit_volume = 1_000_000 * self._hours / _usd(symbol.partition("/")[0])
        self._regime = REGIMES[2]
        self._left = 0
        self.track = Track(timeframe=timeframe)

    def _next_regime(self) -> None:
        self._regime = self._rng.choices(REGIMES, _REGIME_WEIGHTS)[0]
        hours = self._rng.randint(self._regime.min_hours, self._regime.max_hours)
        self._left = max(1, round(hours / self._hours))

    def _candle(self, timestamp: int) -> Candle:
        if self._left <= 0:
            self._next_regime()
        self._left -= 1
        rng, regime, dt = self._rng, self._regime, self._hours
        vol = regime.vol * math.sqrt(dt)
        ret = regime.drift * dt - vol * vol / 2 + vol * rng.gauss(0.0, 1.0)
        open_ = self._price * math.exp(vol * 0.05 * rng.gauss(0.0, 1.0))  # tiny gap
        close = open_ * math.exp(ret)
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, vol * 0.6)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, vol * 0.6)))
        volume = self._unit_volume * math.exp(rng.gauss(0.0, 0.5)) * (1 + abs(ret) * 50)
        self._price = close
        return Candle(
            timestamp=timestamp,
            open=_sig(open_),
            high=_sig(high),
            low=_sig(low),
            close=_sig(close),
            volume=_sig(volume),
        )

    def ensure(self, count: int) -> Track:
        track = self.track
        if len(track.candles) < count:
            period = track.period_ms
            target = count + _CHUNK
            fresh = [self._candle(START_MS + i * period) for i in range(len(track.candles), target)]
            track.extend(fresh)
        return track


class SimulatedFeed(CursorFeed):
    """Seeded simulated candles per symbol; `advance()` reveals one candle per step.

    `length` bounds the simulation (then `exhausted` turns True); None runs forever.
    """

    kind: FeedKind = "simulated"

    def __init__(
        self,
        store: Store,
        symbols: Iterable[str],
        *,
        seed: int = 7,
        timeframe: str = "1h",
        warmup: int = 200,
        length: int | None = None,
    ) -> None:
        timeframe_ms(timeframe)
        super().__init__(store, list(symbols), warmup)
        if length is not None and length <= warmup:
            raise ValueError(f"length {length} must exceed the warm-up {warmup}")
        self.seed = seed
        self.timeframe = timeframe
        self.length = length
        self.label = f"SIMULATED (seed {seed})"
        self._generators = {s: _Generator(seed, s, timeframe) for s in self._symbols}

    def _cursor(self, symbol: str) -> Cursor:
        return Cursor(
            source=f"seed={self.seed};tf={self.timeframe}", start=self.warmup, length=self.length
        )

    def _track(self, symbol: str, need: int) -> Track:
        return self._generators[symbol].ensure(need)
