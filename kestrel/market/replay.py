"""Replaying real candle files, one candle per `advance()`, with the cursor in the Store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from kestrel.errors import ConfigError, InvalidMarketData
from kestrel.market.base import FeedKind
from kestrel.market.clock import Cursor
from kestrel.market.csvfile import (
    find_replay_files,
    parse_candle_filename,
    read_candle_file,
    replay_files,
)
from kestrel.market.cursor import CursorFeed, Track
from kestrel.store.base import Store

DEFAULT_WARMUP = 200


class ReplayFeed(CursorFeed):
    """Replays `<BASE>_<QUOTE>-<tf>.csv` files (or `.parquet` from `kestrel data download`),
    one per symbol.

    Each symbol starts with `warmup` candles visible (indicators need history) and every
    `advance()` reveals one more. Files are read and validated once, up front, so a bad row
    fails at start-up rather than in the middle of a replay.
    """

    kind: FeedKind = "replay"

    def __init__(self, files: Mapping[str, Path], store: Store, *, warmup: int = DEFAULT_WARMUP):
        if not files:
            raise ConfigError("ReplayFeed needs at least one symbol -> candle file")
        super().__init__(store, list(files), warmup)
        self.files = {symbol: Path(path) for symbol, path in files.items()}
        self._tracks: dict[str, Track] = {}
        for symbol, path in self.files.items():
            parsed = parse_candle_filename(path)
            if parsed is None:
                raise ConfigError(f"{path.name}: replay files are named <BASE>_<QUOTE>-<tf>.csv")
            track = Track(timeframe=parsed[1])
            track.extend(read_candle_file(path))
            if len(track.candles) <= warmup:
                raise InvalidMarketData(
                    f"{path}: {len(track.candles)} candles, but the warm-up alone needs "
                    f"{warmup} and the replay at least one more; lower the warm-up"
                )
            self._tracks[symbol] = track
        self.label = "replay:" + ",".join(path.name for path in self.files.values())

    @classmethod
    def from_dir(
        cls,
        directory: Path,
        store: Store,
        symbols: Iterable[str],
        *,
        timeframe: str | Mapping[str, str] | None = None,
        warmup: int = DEFAULT_WARMUP,
    ) -> ReplayFeed:
        """The feed for `symbols` from a folder; ConfigError names any symbol without a file.

        `timeframe` (one for all, or per symbol) picks among several files of a symbol.
        """
        wanted = list(symbols)
        if timeframe is None or isinstance(timeframe, str):
            files = find_replay_files(directory, wanted, timeframe)
        else:
            files = replay_files(directory, {s: timeframe.get(s, "1h") for s in wanted})
        missing = [s for s in wanted if s not in files]
        if missing:
            raise ConfigError(
                f"no replay file in {directory} for {', '.join(missing)} "
                f"(expected <BASE>_<QUOTE>-<tf>.csv, e.g. {missing[0].replace('/', '_')}-1h.csv)"
            )
        return cls(files, store, warmup=warmup)

    def _cursor(self, symbol: str) -> Cursor:
        track = self._tracks[symbol]
        return Cursor(source=self.files[symbol].name, start=self.warmup, length=len(track.candles))

    def _track(self, symbol: str, need: int) -> Track:
        return self._tracks[symbol]
