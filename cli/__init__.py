"""The `kestrel` command line. Imports are lazy: `kestrel --help` loads neither prefect,
pandas, pandas-ta nor ccxt, so it answers at once. Each module below adds its commands."""

from __future__ import annotations

import cli.serve  # noqa: F401  (serve, deploy, blocks, deadman)
from cli import api as _api  # noqa: F401  (api, api key ..., api mcp)
from cli import backtest, control, demo, trading  # noqa: F401  (registers commands)
from cli import data as _data  # noqa: F401  (data download|list)
from cli import live as _live  # noqa: F401  (live [run])
from cli import manual as _manual  # noqa: F401  (order place|cancel|close|...)
from cli import orders as _orders  # noqa: F401  (sync-loop, monitor)
from cli import risk as _risk  # noqa: F401  (breaker status|reset, strategy)
from cli import settings_cmd as _settings  # noqa: F401  (settings set|show|...)
from cli import strategy_cmd as _strategy  # noqa: F401  (strategy list|new|check)
from cli import telegram as _telegram  # noqa: F401  (the command bot)
from cli._common import app


def main() -> None:
    app(prog_name="kestrel")


if __name__ == "__main__":
    main()
