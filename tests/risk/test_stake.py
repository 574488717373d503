"""The stake in any currency (issue 12 item 9): a BTC-quoted pair with no BTC/USDT price used
to refuse every BUY (SKIP_NO_PRICE). A stake set in the quote buys that much; one in another
currency is converted through whatever tickers the exchange has (direct, inverse, bridge);
when nothing converts it the reason names the currencies."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kestrel.config.settings import PaperSettings, WatchlistItem, load_settings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import derive_market
from kestrel.market import ReplayFeed
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Action, Decision, ReasonCode, Signal
from kestrel.risk import assess
from kestrel.risk.gather import gather_context
from kestrel.risk.portfolio import PriceBook
from kestrel.runtime import Runtime, build_runtime
from kestrel.store.sqlite import SQLiteStore
from kestrel.strategy.resolve import resolve_plan
from kestrel.trading import cycle

from .helpers import MARKET, context, trading

D = Decimal


def _shared_ohlcv() -> Path:
    """shared/data/ohlcv sits next to the checkout (main) or above it (a worktree)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared/data/ohlcv/ETH_BTC-5m.csv").exists():
            return parent / "shared/data/ohlcv"
    pytest.skip("shared/data/ohlcv/ETH_BTC-5m.csv not found")


def btc_runtime(data_dir: Path, item: dict[str, Any], **trading: Any) -> Runtime:
    """DEMO on real Bittrex ETH/BTC candles, an account holding 0.5 BTC, and no market that
    prices BTC in USD. The daily loss limit is measured in USD, so with no USD price it
    cannot be checked and fails closed (kestrel.risk.gates): it is off (DEMO) to reach
    sizing."""
    trading.setdefault("gates", {"daily_loss_limit": False})
    settings = load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=[{"symbol": "ETH/BTC", "timeframe": "5m", **item}],
        paper={
            "market_data": "replay",
            "replay_dir": str(_shared_ohlcv()),
            "quote_currency": "BTC",
            "starting_balance": "0.5",
        },
        trading=trading,
    )
    return build_runtime(settings)


@pytest.fixture
def runtime(tmp_data_dir: Path) -> Iterator[Any]:
    opened: list[Runtime] = []

    def make(item: dict[str, Any], **trading: Any) -> Runtime:
        opened.append(btc_runtime(tmp_data_dir, item, **trading))
        return opened[-1]

    with trading_mode(TradingMode.DEMO):
        yield make
    for rt in opened:
        rt.store.close()


def buy(rt: Runtime) -> Decision:
    item = rt.settings.watch("ETH/BTC")
    plan = resolve_plan(rt.settings, item)
    analysis = cycle.analyze_candles(cycle.fetch_candles(rt, item), plan.profile)
    forced = analysis.model_copy(
        update={"signal": Signal(action=Action.BUY, confidence=0.9, reasoning="forced")}
    )
    verdict = cycle.assess_risk(rt, item, forced)
    return cycle.make_decision(rt, item, forced, verdict)


def test_a_stake_in_the_quote_buys_on_a_pair_with_no_usd_price(runtime: Any) -> None:
    rt = runtime({"stake_amount": "0.01"})  # 0.01 BTC, the pair's quote
    plan = resolve_plan(rt.settings, rt.settings.watch("ETH/BTC"))
    decision = buy(rt)
    assert decision.action is Action.BUY, decision.reasons
    price = decision.price
    assert price is not None and decision.amount is not None
    spec = rt.market("ETH/BTC")
    assert decision.amount == spec.amount_to_precision(D("0.01") / price)
    assert decision.amount * price <= D("0.01")
    ctx = gather_context(
        rt, plan, cycle.analyze_candles(cycle.fetch_candles(rt, plan.item), plan.profile)
    )
    assert ctx.quote_to_usd is None and ctx.stake_to_quote == 1
    assert ctx.equity_quote == D("0.5")  # the % caps are measured in BTC


def test_the_percent_caps_clip_a_quote_stake_in_the_quote(runtime: Any) -> None:
    rt = runtime({"stake_amount": "0.3"}, exposure={"max_symbol_pct": "10"})
    decision = buy(rt)
    assert decision.action is Action.BUY, decision.reasons
    assert decision.price is not None and decision.amount is not None
    assert decision.amount * decision.price <= D("0.05")  # 10% of 0.5 BTC
    clipped = [r for r in decision.reasons if r.code is ReasonCode.SIZE_CLIPPED]
    assert clipped and "BTC" in clipped[0].detail


def test_a_usd_stake_with_no_path_to_the_quote_names_the_currencies(runtime: Any) -> None:
    rt = runtime({"trade_amount_usd": "100"})
    decision = buy(rt)
    assert decision.action is Action.HOLD
    (reason,) = [r for r in decision.reasons if r.code is ReasonCode.SKIP_NO_PRICE]
    assert "100 USD into BTC" in reason.detail and "stake_currency" in reason.detail


def test_a_cap_in_usd_refuses_when_the_quote_has_no_usd_price(runtime: Any) -> None:
    rt = runtime({"stake_amount": "0.01"}, sizing={"max_order_usd": "50"})
    decision = buy(rt)
    assert decision.action is Action.HOLD
    (reason,) = [r for r in decision.reasons if r.code is ReasonCode.SKIP_NO_PRICE]
    assert "max_order_usd cannot be checked" in reason.detail


# -- conversion paths -------------------------------------------------------------------------

HOUR = 3_600_000
T0 = 1_699_999_200_000


def _csv(folder: Path, name: str, close: str) -> Path:
    path = folder / name
    rows = [f"{T0 + i * HOUR},{close},{close},{close},{close},10" for i in range(3)]
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def two_markets(tmp_data_dir: Path, tmp_path: Path) -> Iterator[PaperExchange]:
    """A paper exchange listing only ETH/BTC (0.05) and BTC/USDT (40000)."""
    store = SQLiteStore(tmp_data_dir / "demo.sqlite", TradingMode.DEMO)
    prices = {"ETH/BTC": "0.05", "BTC/USDT": "40000"}
    files = {s: _csv(tmp_path, s.replace("/", "_") + "-1h.csv", p) for s, p in prices.items()}
    feed = ReplayFeed(files, store, warmup=2)
    markets = {s: derive_market(s, D(p)) for s, p in prices.items()}
    yield PaperExchange(store, feed, markets, PaperSettings())
    store.close()


def test_rates_take_the_direct_the_inverse_or_a_bridged_path(two_markets: PaperExchange) -> None:
    book = PriceBook(two_markets)
    assert book.rate("ETH", "BTC") == D("0.05")  # direct
    assert book.rate("USDT", "BTC") == 1 / D("40000")  # inverse
    assert book.rate("ETH", "USDT") == D("2000")  # ETH -> BTC -> USDT
    assert book.rate("USD", "BTC") == 1 / D("40000")  # USD-like counts as USDT
    assert book.rate("ETH", "DOGE") is None
    assert book.usd("ETH") == D("2000")  # USD prices use the same paths


def test_a_stake_in_another_currency_is_converted_to_usd_for_sizing() -> None:
    """100 USDC staked on BTC/USDT: converted at the rate gathered (1 here), sized in USD."""
    item = WatchlistItem(symbol="BTC/USDT", stake_amount=D("100"), stake_currency="usdc")
    assert item.stake() == (D("100"), "USDC")
    verdict = assess(
        context(item=item, stake_to_quote=D("1"), quote_free=D("1000000"), trading=trading())
    )
    assert verdict.approved and verdict.amount is not None
    assert verdict.amount == MARKET.amount_to_precision(D("100") / D("20000"))


def test_a_stake_currency_without_an_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="stake_currency needs stake_amount"):
        WatchlistItem(symbol="ETH/BTC", stake_currency="BTC")
    assert WatchlistItem(symbol="ETH/BTC").stake() == (D("100"), "USD")  # trade_amount_usd
    assert WatchlistItem(symbol="ETH/BTC", stake_amount=D("0.01")).stake() == (D("0.01"), "BTC")
