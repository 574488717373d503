"""Live settings: validated changes, stored per mode with an audit event, applied by
`effective_settings`; an invalid change is refused and the previous value stays in force."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, SettingsError
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Action, AnalysisResult, EventType, Position, ReasonCode, Signal
from kestrel.operator.live import (
    LIVE_SETTINGS_KEY,
    describe,
    effective_settings,
    exchange_markets,
    load_overlay,
    reset_setting,
    resolve_settings,
    set_setting,
    watch_add,
    watch_remove,
)
from kestrel.runtime import Runtime
from kestrel.store import open_store
from kestrel.store.sqlite import SQLiteStore
from kestrel.trading.cycle import assess_risk, fetch_candles
from tests.manual.conftest import demo_settings

BY = "cli:tester"
MARKETS = {"BTC/USDT", "ETH/USDT", "SOL/USDT", "ETH/BTC"}


@pytest.fixture
def base(tmp_data_dir: Path) -> KestrelSettings:
    return demo_settings(tmp_data_dir)


def changes(store: SQLiteStore) -> list[dict[str, object]]:
    return [e.data for e in store.list_events(types=[EventType.SETTINGS_CHANGED])]


def test_a_change_is_applied_stored_and_audited(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    [change] = set_setting(demo_store, base, "risk.min_confidence", "0.7", by=BY)

    assert (change.old, change.new, change.changed) == (0.55, 0.7, True)
    assert effective_settings(base, demo_store).risk.min_confidence == 0.7
    assert base.risk.min_confidence == 0.55  # the configured settings are not touched
    [event] = demo_store.list_events(types=[EventType.SETTINGS_CHANGED])
    assert event.data["by"] == BY
    assert (event.data["field"], event.data["old"], event.data["new"]) == (
        "risk.min_confidence",
        0.55,
        0.7,
    )
    assert event.data["revision"] == 1 and event.data["at"]
    assert event.mode is TradingMode.DEMO
    assert "risk.min_confidence: 0.55 -> 0.7 by cli:tester" in event.message


@pytest.mark.parametrize(
    ("key", "value", "symbol", "message"),
    [
        (
            "risk.min_confidence",
            "1.5",
            None,
            "risk.min_confidence: got '1.5'; .*less than or equal to 1",
        ),
        (
            "risk.max_open_positions",
            "0",
            None,
            "risk.max_open_positions: .*greater than or equal to 1",
        ),
        ("risk.max_open_positions", "two", None, "valid integer"),
        (
            "trading.gates.cool_off_s",
            "-5",
            None,
            "trading.gates.cool_off_s: .*greater than or equal",
        ),
        (
            "trading.sizing.method",
            "yolo",
            None,
            "'fixed_quote', 'percent_of_equity' or 'risk_based'",
        ),
        ("trading.default_strategy", "moon", None, "allowed: SWING/CONSERVATIVE"),
        ("trade_amount_usd", "0", "BTC/USDT", "trade_amount_usd: got '0'; must be > 0"),
        ("trade_amount_usd", "lots", "BTC/USDT", "trade_amount_usd: got 'lots'"),
        ("timeframe", "7m", "BTC/USDT", "must be one of 1m, 3m"),
        ("strategy", "moon", "BTC/USDT", "strategy: got 'moon'; allowed: SWING/CONSERVATIVE"),
        ("trade_enabled", "perhaps", "BTC/USDT", "valid boolean"),
        ("trade_enabled", "false", None, "is per symbol"),
        ("trade_enabled", "false", "DOGE/USDT", "DOGE/USDT is not on the watchlist"),
        ("risk.min_confidence", "0.6", "BTC/USDT", "is global"),
        ("min_confidence", "0.6", None, "ambiguous; say which: risk.min_confidence, trading"),
        ("max_leverage", "3", None, "is not a live setting; allowed: trade_enabled"),
        ("risk.min_confidense", "0.6", None, "did you mean risk.min_confidence"),
    ],
)
def test_an_invalid_change_is_refused_and_the_previous_value_stays(
    base: KestrelSettings,
    demo_store: SQLiteStore,
    key: str,
    value: str,
    symbol: str | None,
    message: str,
) -> None:
    set_setting(demo_store, base, "risk.min_confidence", "0.7", by=BY)
    set_setting(demo_store, base, "trade_amount", "250", symbol="BTC/USDT", by=BY)
    before = load_overlay(demo_store)

    with pytest.raises(SettingsError, match=message):
        set_setting(demo_store, base, key, value, symbol=symbol, by=BY)

    assert load_overlay(demo_store) == before
    settings = effective_settings(base, demo_store)
    assert settings.risk.min_confidence == 0.7
    assert settings.watch("BTC/USDT").trade_amount_usd == Decimal("250")
    assert len(changes(demo_store)) == 2


def test_per_symbol_switches_amount_strategy_and_interval(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    set_setting(demo_store, base, "trading", "off", symbol="btc/usdt", by=BY)
    set_setting(demo_store, base, "alerts", "false", symbol="ETH/USDT", by=BY)
    set_setting(demo_store, base, "trade_amount", "42.5", symbol="ETH/USDT", by=BY)
    [strategy] = set_setting(demo_store, base, "preset", "scalp", symbol="BTC/USDT", by=BY)
    set_setting(demo_store, base, "signal_interval", "4h", symbol="ETH/USDT", by=BY)

    assert strategy.new == "SCALP/CONSERVATIVE"
    settings = effective_settings(base, demo_store)
    btc, eth = settings.watch("BTC/USDT"), settings.watch("ETH/USDT")
    assert (btc.trade_enabled, btc.alert_enabled, btc.strategy) == (
        False,
        True,
        "SCALP/CONSERVATIVE",
    )
    assert (eth.trade_enabled, eth.alert_enabled, eth.trade_amount_usd, eth.timeframe) == (
        True,
        False,
        Decimal("42.5"),
        "4h",
    )
    set_setting(demo_store, base, "strategy", "none", symbol="BTC/USDT", by=BY)
    assert effective_settings(base, demo_store).watch("BTC/USDT").strategy is None


def test_gate_thresholds_and_the_default_strategy(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    set_setting(demo_store, base, "cool_off_s", "600", by=BY)
    set_setting(demo_store, base, "gates.cooldown_candles", "5", by=BY)
    set_setting(demo_store, base, "exposure.max_total_pct", "50", by=BY)
    set_setting(demo_store, base, "default_strategy", "aggressive", by=BY)
    set_setting(demo_store, base, "risk.stale_after_candles", "2", by=BY)
    trading = effective_settings(base, demo_store).trading
    assert trading.gates.cool_off_s == 600
    assert trading.gates.cooldown_candles == 5
    assert trading.exposure.max_total_pct == Decimal("50")
    assert trading.default_strategy == "SWING/AGGRESSIVE"
    assert effective_settings(base, demo_store).risk.stale_after_candles == 2
    shown = describe(base, demo_store)
    assert shown["settings"]["trading.gates.cool_off_s"] == 600
    assert "trading.exposure.max_total_pct" in shown["live_fields"]


def test_every_symbol_at_once(base: KestrelSettings, demo_store: SQLiteStore) -> None:
    done = set_setting(demo_store, base, "trade_enabled", "no", symbol="*", by=BY)
    assert [c.symbol for c in done] == ["BTC/USDT", "ETH/USDT"]
    assert not any(i.trade_enabled for i in effective_settings(base, demo_store).watchlist)


def test_setting_the_same_value_writes_nothing(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    [same] = set_setting(demo_store, base, "risk.min_confidence", "0.55", by=BY)
    assert not same.changed
    assert demo_store.get_state(LIVE_SETTINGS_KEY) is None
    assert changes(demo_store) == []


def test_reset_returns_to_the_configured_value(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    set_setting(demo_store, base, "risk.min_confidence", "0.7", by=BY)
    set_setting(demo_store, base, "trade_enabled", "false", symbol="BTC/USDT", by=BY)
    change = reset_setting(demo_store, base, "risk.min_confidence", by=BY)
    assert (change.old, change.new) == (0.7, 0.55)
    reset_setting(demo_store, base, "trade_enabled", symbol="BTC/USDT", by=BY)
    assert effective_settings(base, demo_store) == base
    set_setting(demo_store, base, "risk.max_open_positions", "2", by=BY)
    reset_setting(demo_store, base, None, by=BY)
    assert effective_settings(base, demo_store) == base
    assert len(changes(demo_store)) == 6


def test_watchlist_add_and_remove(base: KestrelSettings, demo_store: SQLiteStore) -> None:
    change = watch_add(
        demo_store, base, "sol/usdt", markets=MARKETS, by=BY, timeframe="4h", trade_amount_usd="50"
    )
    assert change.old == ["BTC/USDT", "ETH/USDT"]
    assert change.new == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    sol = effective_settings(base, demo_store).watch("SOL/USDT")
    assert (sol.timeframe, sol.trade_amount_usd) == ("4h", Decimal("50"))

    watch_remove(demo_store, base, "ETH/USDT", by=BY)
    watch_remove(demo_store, base, "SOL/USDT", by=BY)
    assert [i.symbol for i in effective_settings(base, demo_store).watchlist] == ["BTC/USDT"]
    watch_add(demo_store, base, "ETH/USDT", markets=MARKETS, by=BY)  # the configured one back
    assert effective_settings(base, demo_store).watch("ETH/USDT") == base.watch("ETH/USDT")
    watchlist_events = [c for c in changes(demo_store) if c["field"] == "watchlist"]
    assert len(watchlist_events) == 4


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("DOGE/USDT", "DOGE/USDT is not a spot market on paper"),
        ("ETH/USDC", "did you mean ETH/USDT"),
        ("BTC/USDT", "already on the watchlist"),
        ("bitcoin", "symbol: got 'bitcoin'; .*BASE/QUOTE"),
    ],
)
def test_watchlist_add_is_validated_against_the_markets(
    base: KestrelSettings, demo_store: SQLiteStore, symbol: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        watch_add(demo_store, base, symbol, markets=MARKETS, by=BY, exchange_name="paper")
    assert demo_store.get_state(LIVE_SETTINGS_KEY) is None


def test_watchlist_remove_refusals(base: KestrelSettings, demo_store: SQLiteStore) -> None:
    with pytest.raises(SettingsError, match="SOL/USDT is not on the watchlist"):
        watch_remove(demo_store, base, "SOL/USDT", by=BY)
    demo_store.save_position(
        Position(position_id="p1", symbol="ETH/USDT", amount=Decimal("1")), expected_version=0
    )
    with pytest.raises(SettingsError, match="ETH/USDT has an open position"):
        watch_remove(demo_store, base, "ETH/USDT", by=BY)
    watch_remove(demo_store, base, "BTC/USDT", by=BY)
    with pytest.raises(SettingsError, match="must keep at least one symbol"):
        watch_remove(demo_store, base, "ETH/USDT", by=BY, force=True)
    assert [i.symbol for i in effective_settings(base, demo_store).watchlist] == ["ETH/USDT"]


def test_settings_are_per_mode(tmp_data_dir: Path) -> None:
    demo_base = demo_settings(tmp_data_dir)
    real_base = demo_base.model_copy(update={"mode": TradingMode.REAL})
    with trading_mode(TradingMode.DEMO):
        demo = open_store(demo_base, TradingMode.DEMO)
        set_setting(demo, demo_base, "risk.max_open_positions", "1", by=BY)
        demo.close()
    assert resolve_settings(demo_base).risk.max_open_positions == 1
    assert resolve_settings(real_base).risk.max_open_positions == 10


def test_an_overlay_that_no_longer_applies_fails_loudly(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    set_setting(demo_store, base, "strategy", "SCALP/AGGRESSIVE", symbol="BTC/USDT", by=BY)
    # the config now drops that profile name... simulated by a stored value nobody validated
    found = demo_store.get_state(LIVE_SETTINGS_KEY)
    assert found is not None
    found[0]["symbols"]["BTC/USDT"]["strategy"] = "GONE"
    demo_store.put_state(LIVE_SETTINGS_KEY, found[0], expected_version=found[1])
    with pytest.raises(ConfigError, match=r"watchlist\[BTC/USDT\].strategy: got 'GONE'"):
        effective_settings(base, demo_store)
    reset_setting(demo_store, base, "strategy", symbol="BTC/USDT", by=BY)
    assert effective_settings(base, demo_store) == base


def test_concurrent_changes_all_land(base: KestrelSettings, demo_store: SQLiteStore) -> None:
    keys = [
        ("risk.max_open_positions", "4"),
        ("risk.max_open_orders_per_symbol", "2"),
        ("trading.gates.cool_off_s", "60"),
        ("trading.gates.max_consecutive_losses", "5"),
        ("trading.exposure.max_symbol_pct", "10"),
        ("trading.alerts.price_change_pct", "2"),
    ]
    errors: list[BaseException] = []

    def change(key: str, value: str) -> None:
        try:
            set_setting(demo_store, base, key, value, by=BY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=change, args=kv) for kv in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    overlay, _ = load_overlay(demo_store)
    assert set(overlay.fields) == {key for key, _ in keys}
    assert overlay.revision == len(keys)
    assert sorted(c["revision"] for c in changes(demo_store)) == list(range(1, 7))  # type: ignore[type-var]


def test_markets_of_each_mode(
    base: KestrelSettings, demo_store: SQLiteStore, tmp_path: Path, real_rt: Runtime
) -> None:
    """REAL: the exchange's own list (here the emulator, through ccxt); DEMO replay: the
    symbols with candle files; other DEMO feeds: the paper market table."""
    markets, where = exchange_markets(real_rt.settings, real_rt.store)
    assert (markets, where) == ({"BTC/USDT"}, "binance")
    with pytest.raises(SettingsError, match="ETH/USDT is not a spot market on binance"):
        watch_add(
            real_rt.store, real_rt.settings, "ETH/USDT", markets=markets, by=BY, exchange_name=where
        )

    (tmp_path / "SOL_USDT-1h.csv").write_text("timestamp,open,high,low,close,volume\n")
    replay = base.model_copy(
        update={"paper": base.paper.model_copy(update={"replay_dir": tmp_path})}
    )
    assert exchange_markets(replay, demo_store)[0] == {"SOL/USDT"}
    simulated = base.model_copy(
        update={"paper": base.paper.model_copy(update={"market_data": "simulated"})}
    )
    assert {"BTC/USDT", "ETH/BTC", "SOL/USDT"} <= exchange_markets(simulated, demo_store)[0]


def test_the_next_cycle_sees_the_change(demo_rt: Runtime) -> None:
    """What the trading cycle does at its start with the hook
    `settings = effective_settings(settings, store)`: the risk step then blocks the symbol."""
    base = demo_rt.settings
    set_setting(demo_rt.store, base, "trade_enabled", "off", symbol="BTC/USDT", by=BY)
    demo_rt.settings = effective_settings(base, demo_rt.store)
    item = demo_rt.settings.watch("BTC/USDT")
    series = fetch_candles(demo_rt, item)
    analysis = AnalysisResult(
        symbol="BTC/USDT",
        timeframe="1h",
        candle_timestamp=series.candles[-1].timestamp,
        price=Decimal("20150"),
        indicators={},
        signal=Signal(action=Action.BUY, confidence=0.9),
    )
    verdict = assess_risk(demo_rt, item, analysis)
    assert ReasonCode.SKIP_DISABLED_TRADE in verdict.codes


def test_a_run_over_a_named_subset_does_not_take_added_symbols(
    base: KestrelSettings, demo_store: SQLiteStore
) -> None:
    watch_add(demo_store, base, "SOL/USDT", markets=MARKETS, by=BY)
    set_setting(demo_store, base, "trade_amount", "60", symbol="BTC/USDT", by=BY)
    subset = base.model_copy(update={"watchlist": [base.watch("BTC/USDT")]})
    applied = effective_settings(subset, demo_store, add_symbols=False)
    assert [(i.symbol, i.trade_amount_usd) for i in applied.watchlist] == [
        ("BTC/USDT", Decimal("60"))
    ]
    watch_remove(demo_store, base, "BTC/USDT", by=BY)
    assert effective_settings(subset, demo_store, add_symbols=False).watchlist == []
