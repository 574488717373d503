"""Which settings changes raise risk: the one rule every entry point (CLI, Telegram, flows)
goes through, because they all change settings through kestrel.operator.live.

In REAL mode a change that loosens a risk limit needs the same two-step confirmation as a REAL
order (a one-time token, kestrel.operator.tokens); a change that tightens one applies at once.
Why compare whole settings rather than the field typed: a reset, a symbol added or a strategy
that resolves to another profile can loosen a limit just as well as a `set` can, and the
settings in force before and after are what the next cycle will actually trade with.

"Riskier" per field: a limit raised, or removed (None means no limit, the highest of all); a
safety threshold lowered; a safety switch turned off; the sizing method changed; a symbol's
trade amount raised, trading switched on, or a symbol added with trading on; a symbol's
strategy profile moved from CONSERVATIVE to AGGRESSIVE.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from kestrel.config.settings import KestrelSettings
from kestrel.strategy.profiles import Temperament
from kestrel.strategy.resolve import resolve_plan

# Higher is riskier; None (no limit) is the highest.
HIGHER_IS_RISKIER: tuple[str, ...] = (
    "risk.max_open_orders_per_symbol",
    "risk.max_open_positions",
    "risk.stale_after_candles",
    "trading.gates.max_consecutive_failed_orders",
    "trading.gates.max_consecutive_losses",
    "trading.gates.daily_loss_limit_pct",
    "trading.gates.daily_loss_limit_usd",
    "trading.sizing.equity_pct",
    "trading.sizing.risk_per_trade_pct",
    "trading.sizing.max_order_usd",
    "trading.exposure.max_symbol_usd",
    "trading.exposure.max_symbol_pct",
    "trading.exposure.max_total_usd",
    "trading.exposure.max_total_pct",
)
# Lower is riskier.
LOWER_IS_RISKIER: tuple[str, ...] = (
    "risk.min_confidence",
    "trading.gates.cool_off_s",
    "trading.gates.cooldown_candles",
    "trading.gates.breaker_lookback_h",
    "trading.analysis.agreement_threshold",
    "trading.analysis.min_votes",
)
# Safety switches: off is riskier.
SWITCHES: tuple[str, ...] = (
    "trading.gates.emergency_stop",
    "trading.gates.circuit_breaker",
    "trading.gates.cooldown",
    "trading.gates.daily_loss_limit",
)
# Any change is riskier (no order between the choices).
ANY_CHANGE: tuple[str, ...] = ("trading.sizing.method",)


def risk_increases(before: KestrelSettings, after: KestrelSettings) -> list[str]:
    """One line per limit `after` loosens compared with `before`; empty: no riskier."""
    found: list[str] = []
    for path in HIGHER_IS_RISKIER:
        old, new = _read(before, path), _read(after, path)
        if _limit(new) > _limit(old):
            found.append(f"{path}: {_show(old)} -> {_show(new)} (raised)")
    for path in LOWER_IS_RISKIER:
        old, new = _read(before, path), _read(after, path)
        if new < old:
            found.append(f"{path}: {_show(old)} -> {_show(new)} (lowered)")
    for path in SWITCHES:
        if _read(before, path) and not _read(after, path):
            found.append(f"{path}: on -> off")
    for path in ANY_CHANGE:
        old, new = _read(before, path), _read(after, path)
        if old != new:
            found.append(f"{path}: {_show(old)} -> {_show(new)}")
    found.extend(_watchlist_increases(before, after))
    return found


def _watchlist_increases(before: KestrelSettings, after: KestrelSettings) -> list[str]:
    found: list[str] = []
    previous = {item.symbol: item for item in before.watchlist}
    for item in after.watchlist:
        old = previous.get(item.symbol)
        if old is None:
            if item.trade_enabled:
                found.append(f"watchlist: {item.symbol} added with trading on")
            continue
        if item.trade_enabled and not old.trade_enabled:
            found.append(f"{item.symbol} trade_enabled: off -> on")
        if item.trade_amount_usd > old.trade_amount_usd:
            found.append(
                f"{item.symbol} trade_amount_usd: {_show(old.trade_amount_usd)} -> "
                f"{_show(item.trade_amount_usd)} (raised)"
            )
        was, now = resolve_plan(before, old).profile, resolve_plan(after, item).profile
        if (
            was.temperament is Temperament.CONSERVATIVE
            and now.temperament is Temperament.AGGRESSIVE
        ):
            found.append(f"{item.symbol} strategy: {was.name} -> {now.name} (more aggressive)")
    return found


def _read(settings: KestrelSettings, path: str) -> Any:
    target: Any = settings
    for part in path.split("."):
        target = getattr(target, part)
    return target


def _limit(value: Any) -> Decimal:
    """A limit as a comparable number; None (no limit) is infinite."""
    return Decimal("Infinity") if value is None else Decimal(str(value))


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


SettingsAction = Literal["set", "reset", "watch-add", "watch-remove"]


class SettingsRequest(BaseModel):
    """A settings change as the operator asked for it: what a REAL confirmation token is
    bound to (the same token book as REAL orders, so `/confirm TOKEN` serves both)."""

    kind: Literal["settings"] = "settings"
    action: SettingsAction
    key: str | None = None
    value: Any = None
    symbol: str | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="e.g. watch-add timeframe")

    def params(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        payload = json.dumps(self.params(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> str:
        parts = [self.action, self.key, None if self.value is None else repr(self.value)]
        target = f" for {self.symbol}" if self.symbol else ""
        return " ".join(p for p in parts if p) + target
