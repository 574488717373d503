"""Operator flows for the Prefect UI: the emergency stop (set or clear it with a deployment
run and one parameter), alongside `kestrel stop` / `kestrel resume` and Telegram's /stop.

The stop lives in the store of the chosen mode, so it blocks the next trading cycle wherever
that runs; setting and clearing are audited events (kestrel/risk/controls.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from blocks.settings import BlockRefs, exported
from flows._entry import prepare, settle
from flows.dashboards import publish_dashboards
from flows.params import SettingsOverrides
from kestrel.mode import TradingMode, trading_mode
from kestrel.risk.controls import EmergencyStop, set_emergency_stop
from kestrel.store import open_store


class StopAction(StrEnum):
    STOP = "stop"
    RESUME = "resume"


@flow(name="kestrel-emergency-stop", log_prints=True)
def emergency_stop(
    action: StopAction = StopAction.STOP,
    reason: str = "set from the Prefect UI",
    mode: TradingMode | None = None,
    blocks: BlockRefs | None = None,
    config: SettingsOverrides | None = None,
) -> EmergencyStop | State[Any]:
    """`stop` blocks every new order until `resume`. Idempotent: repeating changes nothing.
    `mode` defaults to the configured one (DEMO unless set)."""
    return settle("emergency stop", lambda: switch(action, reason, mode, blocks, config))


def switch(
    action: StopAction,
    reason: str,
    mode: TradingMode | None,
    blocks: BlockRefs | None,
    config: dict[str, Any] | None,
) -> EmergencyStop:
    resolved = prepare("kestrel-emergency-stop", blocks, config, live=False)
    # The stop (or resume) of another mode than the installed one: it places no order, so the
    # `mode` parameter may name it (unlike `config`, which may not widen the mode).
    settings = (
        resolved.settings if mode is None else resolved.settings.model_copy(update={"mode": mode})
    )
    who = f"prefect:{flow_run.get_name() or 'flow-run'}"
    with exported(resolved.secret_env), trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            state = set_emergency_stop(
                store, active=action is StopAction.STOP, reason=reason, by=who
            )
        finally:
            store.close()
        get_run_logger().warning(
            "emergency stop (%s): %s%s",
            settings.mode.value,
            "ACTIVE" if state.active else "off",
            f" - {state.reason}" if state.reason else "",
        )
        publish_dashboards(settings, label=f"emergency stop: {action.value}", with_exchange=False)
    return state
