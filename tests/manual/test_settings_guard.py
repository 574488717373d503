"""REAL guardrails on live settings: loosening a risk limit needs the same two-step
confirmation as a REAL order (preview -> one-time token -> confirm); tightening applies at
once; DEMO is not asked. One rule (kestrel.operator.risk_changes) for every entry point."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfirmationRefused
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType
from kestrel.operator.live import (
    confirm_change,
    effective_settings,
    load_overlay,
    reset_setting,
    set_setting,
    watch_add,
)
from kestrel.operator.risk_changes import risk_increases
from kestrel.store.sqlite import SQLiteStore
from tests.manual.conftest import demo_settings

BY = "cli:tester"


@pytest.fixture
def real_base(tmp_data_dir: Path) -> KestrelSettings:
    return demo_settings(tmp_data_dir).model_copy(update={"mode": TradingMode.REAL})


@pytest.fixture
def real_store(tmp_data_dir: Path) -> Iterator[SQLiteStore]:
    with trading_mode(TradingMode.REAL):
        store = SQLiteStore(tmp_data_dir / "real.sqlite", TradingMode.REAL)
        yield store
        store.close()


def with_changes(base: KestrelSettings, **paths: object) -> KestrelSettings:
    changed = base.model_copy(deep=True)
    for path, value in paths.items():
        *parents, leaf = path.split("__")
        target: object = changed
        for part in parents:
            target = getattr(target, part)
        setattr(target, leaf, value)
    return changed


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ({"trading__gates__daily_loss_limit_pct": Decimal("10")}, "daily_loss_limit_pct: 5 -> 10"),
        ({"trading__gates__daily_loss_limit_pct": None}, "daily_loss_limit_pct: 5 -> none"),
        ({"trading__gates__cool_off_s": 0}, "trading.gates.cool_off_s: 3600"),
        ({"trading__gates__cooldown_candles": 0}, "trading.gates.cooldown_candles: 2"),
        ({"risk__max_open_orders_per_symbol": 5}, "max_open_orders_per_symbol: 3 -> 5"),
        ({"risk__max_open_positions": 20}, "risk.max_open_positions: 10 -> 20"),
        ({"trading__exposure__max_symbol_pct": None}, "max_symbol_pct: 25 -> none"),
        ({"trading__sizing__max_order_usd": Decimal("500")}, None),  # none -> 500: a new cap
        ({"risk__min_confidence": 0.3}, "risk.min_confidence: 0.55 -> 0.3 (lowered)"),
        ({"trading__gates__circuit_breaker": False}, "circuit_breaker: on -> off"),
        ({"trading__gates__daily_loss_limit_pct": Decimal("2")}, None),
        ({"trading__gates__cool_off_s": 7200}, None),
        ({"risk__max_open_positions": 2}, None),
        ({"trading__default_strategy": "SWING/AGGRESSIVE"}, "(more aggressive)"),
        ({"trading__default_strategy": "SCALP/CONSERVATIVE"}, None),
    ],
)
def test_the_rule(real_base: KestrelSettings, paths: dict[str, object], expected: str) -> None:
    risks = risk_increases(real_base, with_changes(real_base, **paths))
    if expected is None:
        assert risks == []
    else:
        assert len(risks) >= 1 and expected in "; ".join(risks)


def test_removing_the_daily_loss_limit_in_real_needs_a_confirmation(
    real_base: KestrelSettings, real_store: SQLiteStore
) -> None:
    [preview] = set_setting(
        real_store, real_base, "trading.gates.daily_loss_limit_pct", "none", by=BY
    )
    assert preview.needs_confirmation and not preview.changed and preview.token
    assert preview.risks == ["trading.gates.daily_loss_limit_pct: 5 -> none (raised)"]
    assert load_overlay(real_store)[0].revision == 0  # nothing written
    assert effective_settings(real_base, real_store).trading.gates.daily_loss_limit_pct == 5

    with pytest.raises(ConfirmationRefused):  # a token for another change: refused, burnt
        set_setting(
            real_store,
            real_base,
            "trading.gates.daily_loss_limit_pct",
            "50",
            by=BY,
            confirm=preview.token,
        )
    [security] = real_store.list_events(types=[EventType.SECURITY])
    assert security.reasons == ["CONFIRMATION_MISMATCH"]
    assert effective_settings(real_base, real_store).trading.gates.daily_loss_limit_pct == 5

    [again] = set_setting(
        real_store, real_base, "trading.gates.daily_loss_limit_pct", "none", by=BY
    )
    assert again.token is not None and again.token != preview.token
    [done] = set_setting(
        real_store,
        real_base,
        "trading.gates.daily_loss_limit_pct",
        "none",
        by=BY,
        confirm=again.token,
    )
    assert done.changed and (done.old, done.new) == ("5", None)
    assert effective_settings(real_base, real_store).trading.gates.daily_loss_limit_pct is None
    [audit] = real_store.list_events(types=[EventType.SETTINGS_CHANGED])
    assert audit.data["by"] == BY


def test_lowering_risk_in_real_applies_at_once(
    real_base: KestrelSettings, real_store: SQLiteStore
) -> None:
    [change] = set_setting(real_store, real_base, "trading.gates.daily_loss_limit_pct", "2", by=BY)
    assert change.changed and not change.needs_confirmation
    lowered = set_setting(real_store, real_base, "trade_amount", "50", symbol="*", by=BY)
    assert [c.changed for c in lowered] == [True, True]
    # ...and undoing it (a reset back to the configured, looser value) raises risk again
    preview = reset_setting(real_store, real_base, "trading.gates.daily_loss_limit_pct", by=BY)
    assert preview.needs_confirmation and preview.token
    assert effective_settings(real_base, real_store).trading.gates.daily_loss_limit_pct == 2


def test_demo_is_not_asked(tmp_data_dir: Path, demo_store: SQLiteStore) -> None:
    base = demo_settings(tmp_data_dir)
    [change] = set_setting(demo_store, base, "trading.gates.cool_off_s", "0", by=BY)
    assert change.changed and not change.needs_confirmation


def test_every_symbol_at_once_is_one_confirmation(
    real_base: KestrelSettings, real_store: SQLiteStore
) -> None:
    [preview] = set_setting(real_store, real_base, "trade_amount", "5000", symbol="*", by=BY)
    assert preview.needs_confirmation and len(preview.risks) == 2
    done = set_setting(
        real_store, real_base, "trade_amount", "5000", symbol="*", by=BY, confirm=preview.token
    )
    assert [c.symbol for c in done if c.changed] == ["BTC/USDT", "ETH/USDT"]


def test_confirm_by_token_alone_applies_the_stored_change(
    real_base: KestrelSettings, real_store: SQLiteStore
) -> None:
    """Telegram's `/confirm TOKEN` and `kestrel settings confirm TOKEN`: the token's own
    change, once; a used or unknown token is a SECURITY event."""
    [preview] = set_setting(
        real_store, real_base, "strategy", "SWING/AGGRESSIVE", symbol="BTC/USDT", by=BY
    )
    assert preview.token and "more aggressive" in preview.risks[0]
    [done] = confirm_change(real_store, real_base, preview.token, by="telegram:1:owner")
    assert done.changed and done.by == "telegram:1:owner"
    assert effective_settings(real_base, real_store).watch("BTC/USDT").strategy == (
        "SWING/AGGRESSIVE"
    )
    with pytest.raises(ConfirmationRefused, match="already used"):
        confirm_change(real_store, real_base, preview.token, by="telegram:1:owner")
    with pytest.raises(ConfirmationRefused, match="unknown"):
        confirm_change(real_store, real_base, "AAAABBBBCCCCDDDD", by="telegram:1:owner")
    assert len(real_store.list_events(types=[EventType.SECURITY])) == 2


def test_adding_a_traded_symbol_in_real_needs_a_confirmation(
    real_base: KestrelSettings, real_store: SQLiteStore
) -> None:
    markets = {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    preview = watch_add(real_store, real_base, "SOL/USDT", markets=markets, by=BY)
    assert preview.needs_confirmation and preview.token
    watched = watch_add(
        real_store, real_base, "SOL/USDT", markets=markets, by=BY, trade_enabled=False
    )
    assert watched.changed  # only watched and alerted: no new risk
    [enable] = set_setting(real_store, real_base, "trade_enabled", "on", symbol="SOL/USDT", by=BY)
    assert enable.needs_confirmation and enable.risks == ["SOL/USDT trade_enabled: off -> on"]
