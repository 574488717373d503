"""Analysis: indicators (pandas-ta) and analysts that turn candles into a Signal.

pandas, pandas-ta and httpx are imported by the modules that need them; importing this
package only loads the light ones (the CLI and the settings import it for STRATEGY_PRESETS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kestrel.strategy.profiles import STRATEGY_PRESETS, IndicatorSpec

if TYPE_CHECKING:
    from kestrel.analysis.engine import analyze

__all__ = ["STRATEGY_PRESETS", "IndicatorSpec", "analyze"]


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from kestrel.analysis.engine import analyze

        return analyze
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
