"""Position sizing: how much to buy, then clipped by the caps.

- fixed_quote: the watchlist item's stake (item.stake(): stake_amount in stake_currency,
  else trade_amount_usd in USD), converted through the exchange's tickers (RiskContext
  .stake_to_quote);
- percent_of_equity: sizing.equity_pct of the account's equity;
- risk_based: an amount that loses sizing.risk_per_trade_pct of equity if the stop is hit,
  i.e. equity x risk% / stop distance%.

The USD budget is then clipped to sizing.max_order_usd and to the room left under the
exposure caps (per symbol and in total, USD and % of equity), converted to the base asset at
the current price and truncated to the market's amount precision. When the pair's quote has
no USD price at all (a BTC-quoted pair without a BTC/USDT ticker path), a fixed stake is
sized in the quote instead: the % caps are measured in the quote, and a cap set in USD,
which cannot be checked, refuses the entry. The market minimums and the balance are checked
afterwards on that final amount (rules.check_size). A SELL exits the whole position, capped
by what the wallet actually holds.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.models import Reason, ReasonCode
from kestrel.risk.context import Exposure, RiskContext
from kestrel.risk.levels import Levels
from kestrel.risk.portfolio import BRIDGES

HUNDRED = Decimal("100")


class BuySize(BaseModel):
    """The amount to buy and the budget behind it: in USD, or in the quote when the quote has
    no USD price (size_buy_in_quote)."""

    amount: Decimal = Decimal("0")
    budget_usd: Decimal = Decimal("0")
    wanted_usd: Decimal = Decimal("0")
    budget_quote: Decimal | None = None
    wanted_quote: Decimal | None = None
    clipped: list[Reason] = Field(default_factory=list)
    block: Reason | None = None


def stake_in_quote(ctx: RiskContext) -> tuple[Decimal | None, Reason | None]:
    """The item's stake in the pair's quote currency, or why it cannot be converted."""
    amount, currency = ctx.item.stake()
    if ctx.stake_to_quote is not None:
        return amount * ctx.stake_to_quote, None
    quote = ctx.market.quote
    return None, Reason(
        code=ReasonCode.SKIP_NO_PRICE,
        detail=f"cannot convert the stake {amount} {currency} into {quote}: no ticker "
        f"{currency}/{quote} or {quote}/{currency}, nor a path through {', '.join(BRIDGES)}; "
        f'set the watchlist item\'s stake in {quote} (stake_amount, stake_currency = "{quote}")',
        values={"stake": str(amount), "stake_currency": currency, "quote": quote},
    )


def wanted_usd(ctx: RiskContext, levels: Levels) -> tuple[Decimal | None, Reason | None]:
    sizing = ctx.trading.sizing
    if sizing.method == "fixed_quote":
        amount, currency = ctx.item.stake()
        if currency == "USD":
            return amount, None
        in_quote, problem = stake_in_quote(ctx)
        if in_quote is None or ctx.quote_to_usd is None:
            return None, problem
        return in_quote * ctx.quote_to_usd, None
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


def caps(
    ctx: RiskContext, equity: Decimal | None = None, exposure: Exposure | None = None
) -> list[tuple[str, Decimal, Decimal]]:
    """(name, cap, room left) for every cap that applies, in USD; or, given the equity and
    exposure in another unit (the quote), the % caps alone in that unit."""
    sizing, limits = ctx.trading.sizing, ctx.trading.exposure
    in_usd = exposure is None
    equity = ctx.equity_usd if in_usd else equity
    held = ctx.exposure if exposure is None else exposure
    found: list[tuple[str, Decimal, Decimal]] = []
    if in_usd and sizing.max_order_usd is not None:
        found.append(("max_order_usd", sizing.max_order_usd, sizing.max_order_usd))
    symbol_caps = [("max_symbol_usd", limits.max_symbol_usd)] if in_usd else []
    total_caps = [("max_total_usd", limits.max_total_usd)] if in_usd else []
    if equity is not None:
        if limits.max_symbol_pct is not None:
            symbol_caps.append(("max_symbol_pct", equity * limits.max_symbol_pct / HUNDRED))
        if limits.max_total_pct is not None:
            total_caps.append(("max_total_pct", equity * limits.max_total_pct / HUNDRED))
    for name, cap in symbol_caps:
        if cap is not None:
            found.append((name, cap, cap - held.symbol_usd))
    for name, cap in total_caps:
        if cap is not None:
            found.append((name, cap, cap - held.total_usd))
    return found


def clip(
    budget: Decimal, found: list[tuple[str, Decimal, Decimal]], held: Exposure, unit: str
) -> tuple[Decimal, list[Reason], Reason | None]:
    """The budget clipped to the room under each cap (with a note per clip), or the cap that
    leaves no room at all."""
    clipped: list[Reason] = []
    for name, cap, room in found:
        if room <= 0:
            return (
                budget,
                clipped,
                Reason(
                    code=ReasonCode.SKIP_MAX_EXPOSURE,
                    detail=f"no room under {name} {cap:.2f} {unit} "
                    f"(symbol {held.symbol_usd:.2f}, total {held.total_usd:.2f})",
                    values={
                        "cap": name,
                        f"cap_{unit.lower()}": str(cap),
                        f"symbol_{unit.lower()}": str(held.symbol_usd),
                        f"total_{unit.lower()}": str(held.total_usd),
                    },
                ),
            )
        if room < budget:
            clipped.append(
                Reason(
                    code=ReasonCode.SIZE_CLIPPED,
                    detail=f"{budget:.2f} {unit} clipped to {room:.2f} by {name} {cap:.2f}",
                    values={
                        "by": name,
                        f"from_{unit.lower()}": str(budget),
                        f"to_{unit.lower()}": str(room),
                    },
                )
            )
            budget = room
    return budget, clipped, None


def size_buy(ctx: RiskContext, levels: Levels) -> BuySize:
    if ctx.quote_to_usd is None or ctx.quote_to_usd <= 0:
        return size_buy_in_quote(ctx)
    wanted, problem = wanted_usd(ctx, levels)
    if wanted is None:
        return BuySize(block=problem)
    budget, clipped, block = clip(wanted, caps(ctx), ctx.exposure, "USD")
    if block is not None:
        return BuySize(wanted_usd=wanted, block=block)
    price = ctx.analysis.price
    amount = ctx.market.amount_to_precision(budget / ctx.quote_to_usd / price)
    return BuySize(amount=amount, budget_usd=budget, wanted_usd=wanted, clipped=clipped)


def size_buy_in_quote(ctx: RiskContext) -> BuySize:
    """A pair whose quote has no USD price: a fixed stake convertible to the quote buys that
    much, within the % caps measured in the quote; USD caps cannot be checked, so refuse."""
    quote = ctx.market.quote
    method = ctx.trading.sizing.method
    if method != "fixed_quote":
        return BuySize(
            block=Reason(
                code=ReasonCode.SKIP_NO_PRICE,
                detail=f"{method} sizing works in USD and {quote} has no USD price (no "
                f"{quote}/USDT ticker path); use fixed_quote with a stake in {quote}",
                values={"quote": quote, "method": method},
            )
        )
    usd_caps = [name for name, _, _ in caps(ctx) if name.endswith("_usd")]
    if usd_caps:
        return BuySize(
            block=Reason(
                code=ReasonCode.SKIP_NO_PRICE,
                detail=f"{quote} has no USD price, so {', '.join(usd_caps)} cannot be "
                f"checked; add a {quote}/USDT market or unset them",
                values={"quote": quote, "caps": ", ".join(usd_caps)},
            )
        )
    wanted, problem = stake_in_quote(ctx)
    if wanted is None:
        return BuySize(block=problem)
    found = caps(ctx, ctx.equity_quote, ctx.exposure_quote)
    budget, clipped, block = clip(wanted, found, ctx.exposure_quote, quote)
    if block is not None:
        return BuySize(wanted_quote=wanted, block=block)
    amount = ctx.market.amount_to_precision(budget / ctx.analysis.price)
    return BuySize(amount=amount, budget_quote=budget, wanted_quote=wanted, clipped=clipped)


def size_sell(ctx: RiskContext) -> Decimal:
    held = ctx.position.amount if ctx.position else Decimal("0")
    return ctx.market.amount_to_precision(min(held, ctx.base_for_exit))
