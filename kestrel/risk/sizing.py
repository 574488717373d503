"""Position sizing: how much to buy, then clipped by the caps.

- fixed_quote: the watchlist item's trade_amount_usd;
- percent_of_equity: sizing.equity_pct of the account's equity;
- risk_based: an amount that loses sizing.risk_per_trade_pct of equity if the stop is hit,
  i.e. equity x risk% / stop distance%.

The USD budget is then clipped to sizing.max_order_usd and to the room left under the
exposure caps (per symbol and in total, USD and % of equity), converted to the base asset at
the current price and truncated to the market's amount precision. The market minimums and the
balance are checked afterwards on that final amount (rules.check_size). A SELL exits the
whole position, capped by what the wallet actually holds.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.models import Reason, ReasonCode
from kestrel.risk.context import RiskContext
from kestrel.risk.levels import Levels

HUNDRED = Decimal("100")


class BuySize(BaseModel):
    amount: Decimal = Decimal("0")
    budget_usd: Decimal = Decimal("0")
    wanted_usd: Decimal = Decimal("0")
    clipped: list[Reason] = Field(default_factory=list)
    block: Reason | None = None


def wanted_usd(ctx: RiskContext, levels: Levels) -> tuple[Decimal | None, Reason | None]:
    sizing = ctx.trading.sizing
    if sizing.method == "fixed_quote":
        return ctx.item.trade_amount_usd, None
    if ctx.equity_usd is None or ctx.equity_usd <= 0:
        return None, Reason(
            code=ReasonCode.SKIP_NO_PRICE,
            detail=f"{sizing.method} sizing needs the account equity in USD, which is unknown",
            values={"equity_usd": str(ctx.equity_usd) if ctx.equity_usd is not None else None},
        )
    if sizing.method == "percent_of_equity":
        return ctx.equity_usd * sizing.equity_pct / HUNDRED, None
    if levels.stop_distance_pct is None or levels.stop_distance_pct <= 0:
        return None, Reason(
            code=ReasonCode.SKIP_INSUFFICIENT_DATA,
            detail=f"risk-based sizing needs a stop distance: {levels.problem or 'none'}",
        )
    risk_usd = ctx.equity_usd * sizing.risk_per_trade_pct / HUNDRED
    return risk_usd / (levels.stop_distance_pct / HUNDRED), None


def caps(ctx: RiskContext) -> list[tuple[str, Decimal, Decimal]]:
    """(name, cap in USD, room left in USD) for every cap that applies."""
    sizing, exposure = ctx.trading.sizing, ctx.trading.exposure
    equity = ctx.equity_usd
    found: list[tuple[str, Decimal, Decimal]] = []
    if sizing.max_order_usd is not None:
        found.append(("max_order_usd", sizing.max_order_usd, sizing.max_order_usd))
    symbol_caps = [("max_symbol_usd", exposure.max_symbol_usd)]
    total_caps = [("max_total_usd", exposure.max_total_usd)]
    if equity is not None:
        if exposure.max_symbol_pct is not None:
            symbol_caps.append(("max_symbol_pct", equity * exposure.max_symbol_pct / HUNDRED))
        if exposure.max_total_pct is not None:
            total_caps.append(("max_total_pct", equity * exposure.max_total_pct / HUNDRED))
    for name, cap in symbol_caps:
        if cap is not None:
            found.append((name, cap, cap - ctx.exposure.symbol_usd))
    for name, cap in total_caps:
        if cap is not None:
            found.append((name, cap, cap - ctx.exposure.total_usd))
    return found


def size_buy(ctx: RiskContext, levels: Levels) -> BuySize:
    wanted, problem = wanted_usd(ctx, levels)
    if wanted is None:
        return BuySize(block=problem)
    budget = wanted
    clipped: list[Reason] = []
    for name, cap, room in caps(ctx):
        if room <= 0:
            return BuySize(
                wanted_usd=wanted,
                block=Reason(
                    code=ReasonCode.SKIP_MAX_EXPOSURE,
                    detail=f"no room under {name} {cap:.2f} USD "
                    f"(symbol {ctx.exposure.symbol_usd:.2f}, total {ctx.exposure.total_usd:.2f})",
                    values={
                        "cap": name,
                        "cap_usd": str(cap),
                        "symbol_usd": str(ctx.exposure.symbol_usd),
                        "total_usd": str(ctx.exposure.total_usd),
                    },
                ),
            )
        if room < budget:
            clipped.append(
                Reason(
                    code=ReasonCode.SIZE_CLIPPED,
                    detail=f"{budget:.2f} USD clipped to {room:.2f} by {name} {cap:.2f}",
                    values={"by": name, "from_usd": str(budget), "to_usd": str(room)},
                )
            )
            budget = room
    assert ctx.quote_to_usd is not None and ctx.quote_to_usd > 0  # checked by the caller
    price = ctx.analysis.price
    amount = ctx.market.amount_to_precision(budget / ctx.quote_to_usd / price)
    return BuySize(amount=amount, budget_usd=budget, wanted_usd=wanted, clipped=clipped)


def size_sell(ctx: RiskContext) -> Decimal:
    held = ctx.position.amount if ctx.position else Decimal("0")
    return ctx.market.amount_to_precision(min(held, ctx.base_for_exit))
