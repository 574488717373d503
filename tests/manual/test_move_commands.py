"""`kestrel order move-stop` and Telegram's /move: the operator's ways to move a position's
levels and set its trailing stop (issue 12, item 10), REAL through the emulator with a token,
DEMO at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from emulator import BinanceEmulator
from kestrel.config.settings import load_settings
from kestrel.errors import CommandError
from kestrel.manual.telegram import parse_move
from kestrel.mode import TradingMode
from kestrel.notify.commands import Caller, CommandContext, positions_card
from kestrel.runtime import Runtime
from kestrel.store import open_store
from tests.manual.conftest import KEY, SECRET, advance
from tests.manual.test_cli import REAL_TOML, Kestrel, token_in
from tests.manual.test_telegram import run, text_of
from tests.notify.helpers import OWNER_CHAT


@pytest.fixture
def real(tmp_path: Path, tmp_data_dir: Path, emulator: BinanceEmulator) -> Kestrel:
    config = tmp_path / "kestrel.toml"
    config.write_text(REAL_TOML.format(data_dir=tmp_data_dir, url=emulator.url))
    return Kestrel(config, {"KESTREL_BINANCE_API_KEY": KEY, "KESTREL_BINANCE_API_SECRET": SECRET})


def stored_levels(data_dir: Path) -> tuple[Decimal | None, ...]:
    store = open_store(load_settings(mode="REAL", data_dir=data_dir), TradingMode.REAL)
    try:
        position = store.open_position("BTC/USDT")
        assert position is not None
        return position.stop_loss, position.take_profit, position.trailing_stop_pct
    finally:
        store.close()


def test_real_move_stop_command_previews_then_moves(real: Kestrel, tmp_data_dir: Path) -> None:
    token = token_in(real.ok("order", "place", "BTC/USDT", "buy", "0.01", "--sl", "19000"))
    real.ok("order", "confirm", token)
    args = ("order", "move-stop", "BTC/USDT", "--sl", "19500", "--tp", "21000")
    preview = real.ok(*args, "--trail", "2", "--trail-from", "1")
    assert "NEEDS_CONFIRMATION" in preview and "stop_loss: 19000 -> 19500" in preview
    assert stored_levels(tmp_data_dir)[0] == Decimal("19000")
    token = token_in(preview)
    done = real.ok(*args, "--trail", "2", "--trail-from", "1", "--confirm", token)
    assert "APPLIED" in done
    assert stored_levels(tmp_data_dir) == (Decimal("19500"), Decimal("21000"), Decimal("0.02"))
    shown = "SL 19500, trailing 2% from +1% (waiting), TP 21000"
    assert shown in real.ok("live") and shown in real.ok("status")
    off = real.ok(
        "order", "confirm", token_in(real.ok("order", "move-stop", "BTC/USDT", "--trail", "0"))
    )
    assert "APPLIED" in off and "SL 19500, TP 21000" in real.ok("live")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["BTC/USDT"], "give a stop-loss, a take-profit or a trailing distance"),
        (["BTC/USDT", "--sl", "-1"], "--stop-loss: must be a number > 0"),
        (["BTC/USDT", "--trail", "100"], "trailing_distance_pct: Input should be less than 100"),
        (
            ["BTC/USDT", "--sl", "1", "--trail-from", "2"],
            "a trailing activation needs a trailing distance",
        ),
    ],
)
def test_bad_move_arguments_exit_2_and_say_why(
    real: Kestrel, args: list[str], message: str
) -> None:
    result = real("order", "move-stop", *args)
    assert result.exit_code == 2 and message in result.output


def test_telegram_parse_move() -> None:
    request = parse_move(["btc/usdt", "sl", "19000", "trail", "2%", "from", "1"])
    assert (request.symbol, request.stop_loss, request.take_profit) == (
        "BTC/USDT",
        Decimal("19000"),
        None,
    )
    assert (request.trailing_distance_pct, request.trailing_activation_pct) == (
        Decimal("2"),
        Decimal("1"),
    )
    assert parse_move(["BTC/USDT", "trail", "0"]).trailing_distance_pct == 0
    for bad, message in [
        ([], "usage: /move"),
        (["BTC/USDT", "sl"], "usage: /move"),
        (["BTC/USDT", "moon", "3"], "unknown option 'moon'"),
        (["BTC/USDT"], "give a stop-loss"),
    ]:
        with pytest.raises(CommandError, match=message):
            parse_move(bad)


def test_telegram_move_in_demo_applies_at_once(demo_rt: Runtime) -> None:
    run(demo_rt, "/buy BTC/USDT 0.01 sl 19000")
    advance(demo_rt)
    card = text_of(run(demo_rt, "/move BTC/USDT sl 19800 tp 21500"))
    assert "APPLIED" in card and "stop_loss: 19000 -> 19800" in card
    position = demo_rt.store.open_position("BTC/USDT")
    assert position is not None
    assert (position.stop_loss, position.take_profit) == (Decimal("19800"), Decimal("21500"))
    changed = text_of(run(demo_rt, "/set trailing.distance_pct 2"))
    assert "trading.trailing.distance_pct: None -> '2'" in changed  # for positions to come
    card = text_of(run(demo_rt, "/move BTC/USDT trail 1"))
    assert "APPLIED" in card
    ctx = CommandContext(store=demo_rt.store, caller=Caller(chat_id=OWNER_CHAT, user="owner"))
    listed = text_of(positions_card(ctx, []))
    # The strict paper fill paid slippage and a fee in BTC, so the last price is still under the
    # entry price: a trail from +0% waits for the position to be in profit.
    assert "SL 19800, trailing 1% from +0% (waiting), TP 21500" in listed
    refused = text_of(run(demo_rt, "/move BTC/USDT sl 99999"))
    assert "Refused" in refused and "at or above the last price" in refused
