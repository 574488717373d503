"""Prefect environment defaults, applied before prefect is first imported.

- a project-local PREFECT_HOME (unless the user set one), so a fresh clone needs no set-up;
- telemetry off (these machines have no internet; it only logs errors);
- a quiet temporary server (its shutdown races are logged as errors upstream);
- a generous ephemeral-server start-up timeout: the first start on a fresh machine runs the
  database migrations and took ~40 s here, past Prefect's 20 s default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
}


def configure_prefect_env(data_dir: Path | None = None) -> None:
    if "prefect" in sys.modules:
        return  # too late to change its settings; the caller's environment wins
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "PREFECT_API_URL" not in os.environ:
        # The temporary server is stopped when the process ends, while its task-run recorder
        # may still be flushing; the resulting CancelledError tracebacks are upstream noise.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    if "PREFECT_HOME" not in os.environ:
        base = data_dir or Path(os.environ.get("KESTREL_DATA_DIR", ".kestrel"))
        os.environ["PREFECT_HOME"] = str((base / "prefect").resolve())
    # The ephemeral server never comes up (start-up times out) if its home does not exist.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
