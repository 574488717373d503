"""Code that runs in child processes (spawned, so importable): notification runs that race
each other, or that get killed mid-send."""

from __future__ import annotations

import dataclasses
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from kestrel.mode import TradingMode
from kestrel.notify.outbox import drain_outbox
from kestrel.notify.settings import TelegramSettings
from kestrel.store.sqlite import SQLiteStore


def drain_once(
    path: Path, settings_kwargs: dict[str, Any], barrier: Barrier | None, results: Queue[object]
) -> None:
    try:
        store = SQLiteStore(path, TradingMode.DEMO)
        settings = TelegramSettings(**settings_kwargs)
        if barrier is not None:
            barrier.wait()
        report = drain_outbox(store, settings)
        store.close()
        results.put(("ok", dataclasses.asdict(report)))
    except BaseException:
        results.put(("error", traceback.format_exc()))
