"""The dead-man's switch: Prefect automations, evaluated by the Prefect server, that alert on
Telegram when Kestrel stops working, including when every Kestrel process is gone.

- `kestrel-deadman-crashed`: a flow run of any Kestrel deployment (tag `kestrel`) crashed
  (its process died, was killed, or lost its infrastructure).
- `kestrel-deadman-silent-<deployment>`: order-sync or a trading-cycle deployment has not
  completed a run for `ops.deadman_sync_after_s` / `ops.deadman_cycle_after_s` (a proactive
  trigger: it fires on the *absence* of Completed events, so it catches a dead worker, a
  paused schedule or runs that always fail, none of which any Kestrel process could report).
- `kestrel-deadman-live-engine`: a live engine's heartbeats (flows/handover.py) stopped for
  `ops.deadman_engine_after_s` without a clean stop: it resumes the per-job schedules the
  engine had paused (order-sync, position-monitor, notifications, the trading cycles) and
  their silence alarms, and says so. The schedules are the fallback while the engine is down.

The alert is sent by the server's own actions service through Prefect's built-in Custom
Webhook notification block pointed at Telegram's sendMessage (the server cannot load a
custom block class, so a Kestrel-specific block would not work here). The token sits in the
block's secret values; without a Telegram bot the automations are still created and fire
visibly in the Prefect UI (Events / Automations), with no message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from flows.handover import (
    ENGINE_RESOURCE_PREFIX,
    HEARTBEAT_EVENT,
    SILENT_PREFIX,
    STOPPED_EVENT,
    fallback_deployments,
)
from kestrel.notify.settings import TelegramSettings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.actions import ActionTypes
    from prefect.events.schemas.automations import AutomationCore

WEBHOOK_BLOCK = "kestrel-deadman-telegram"
CRASH_AUTOMATION = "kestrel-deadman-crashed"
ENGINE_AUTOMATION = "kestrel-deadman-live-engine"
KESTREL_TAG = "kestrel"
WATCHED_FLOWS = ("kestrel-order-sync", "kestrel-trading-cycle")


@dataclass(frozen=True)
class Watched:
    """A deployment that must complete a run at least every `after_s` seconds."""

    name: str
    deployment_id: UUID
    after_s: float


def save_telegram_webhook(telegram: TelegramSettings, token: str) -> UUID:
    """A Custom Webhook block that posts the alert to the notification chat (idempotent)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    if telegram.notify_chat_id is None:
        raise ValueError("the dead-man's switch needs telegram.notify_chat_id")
    block = CustomWebhookNotificationBlock(
        name="Kestrel dead-man's switch (Telegram)",
        url=telegram.api_base_url + "{{token}}/sendMessage",
        method="POST",
        json_data={"chat_id": telegram.notify_chat_id, "text": "{{subject}}\n{{body}}"},
        secrets=SecretDict({"token": token}),
        timeout=telegram.request_timeout_s,
    )
    return cast(UUID, block.save(WEBHOOK_BLOCK, overwrite=True))


def _actions(block_id: UUID | None, subject: str, body: str) -> list[ActionTypes]:
    from prefect.events.actions import DoNothing, SendNotification

    if block_id is None:
        return [DoNothing()]
    return [SendNotification(block_document_id=block_id, subject=subject, body=body)]


def crash_automation(block_id: UUID | None) -> AutomationCore:
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=CRASH_AUTOMATION,
        description="A Kestrel flow run crashed (process died or was killed).",
        tags=[KESTREL_TAG],
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "tag",
                "prefect.resource.id": f"prefect.tag.{KESTREL_TAG}",
            },
            expect={"prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=_actions(
            block_id,
            "KESTREL ALERT: a run crashed",
            "Flow run {{ flow_run.name }} ({{ flow.name }}) crashed: {{ flow_run.state.message }}",
        ),
    )


def silence_automation(watched: Watched, block_id: UUID | None) -> AutomationCore:
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    minutes = watched.after_s / 60
    return AutomationCore(
        name=SILENT_PREFIX + watched.name,
        description=f"{watched.name} completed no run for {minutes:g} minutes.",
        tags=[KESTREL_TAG],
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.id": f"prefect.deployment.{watched.deployment_id}",
            },
            expect={"prefect.flow-run.Completed"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=watched.after_s),
        ),
        actions=_actions(
            block_id,
            f"KESTREL ALERT: {watched.name} is silent",
            f"No run of {watched.name} completed in the last {minutes:g} minutes. "
            "Check the worker (or `kestrel serve`), the Prefect server and the run logs.",
        ),
    )


def engine_automation(
    fallback: list[tuple[str, UUID]],
    silence: list[UUID],
    block_id: UUID | None,
    after_s: float,
) -> AutomationCore:
    """Heartbeats of one engine stopped without its `stopped` event: resume the `fallback`
    deployments (name, id) and the `silence` automations, and alert."""
    from prefect.events.actions import ResumeAutomation, ResumeDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    names = ", ".join(name for name, _ in fallback) or "none deployed"
    resume: list[ActionTypes] = [
        ResumeDeployment(source="selected", deployment_id=deployment_id)
        for _, deployment_id in fallback
    ]
    resume += [ResumeAutomation(source="selected", automation_id=a) for a in silence]
    alert = _actions(
        block_id,
        "KESTREL ALERT: the live engine is silent",
        f"No heartbeat from the live engine for {after_s:g} s. The scheduled deployments "
        f"are active again: {names}. Check the engine's run in the Prefect UI.",
    )
    return AutomationCore(
        name=ENGINE_AUTOMATION,
        description="A live engine stopped beating: the per-job schedules take over again.",
        tags=[KESTREL_TAG],
        trigger=EventTrigger(
            match={"prefect.resource.id": ENGINE_RESOURCE_PREFIX + "*"},
            after={HEARTBEAT_EVENT},
            expect={HEARTBEAT_EVENT, STOPPED_EVENT},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[*resume, *alert],
    )


def upsert_automation(client: SyncPrefectClient, automation: AutomationCore) -> UUID:
    """Create, or replace the definition of, the automation with this name."""
    existing = client.read_automations_by_name(automation.name)
    if existing:
        first, *duplicates = existing
        client.update_automation(first.id, automation)
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        return first.id
    return client.create_automation(automation)


def watched_deployments(
    client: SyncPrefectClient, *, cycle_after_s: float, sync_after_s: float
) -> list[Watched]:
    """order-sync and every trading-cycle deployment on the server."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deployments = client.read_deployments(
        flow_filter=FlowFilter(name=FlowFilterName(any_=list(WATCHED_FLOWS)))
    )
    flows = {flow.id: flow.name for flow in client.read_flows()}
    watched = []
    for deployment in deployments:
        is_sync = flows.get(deployment.flow_id) == "kestrel-order-sync"
        watched.append(
            Watched(
                name=deployment.name,
                deployment_id=deployment.id,
                after_s=sync_after_s if is_sync else cycle_after_s,
            )
        )
    return sorted(watched, key=lambda w: w.name)


def install_deadman(
    *,
    telegram: TelegramSettings,
    token: str | None,
    cycle_after_s: float,
    sync_after_s: float,
    engine_after_s: float = 120.0,
) -> dict[str, Any]:
    """Create or update every dead-man automation on the current Prefect API (run it again
    after adding a deployment: the engine's automation resumes the ones it knows)."""
    from prefect import get_client

    block_id = save_telegram_webhook(telegram, token) if token and telegram.can_notify else None
    created: dict[str, UUID] = {}
    with get_client(sync_client=True) as client:
        created[CRASH_AUTOMATION] = upsert_automation(client, crash_automation(block_id))
        watched = watched_deployments(
            client, cycle_after_s=cycle_after_s, sync_after_s=sync_after_s
        )
        for item in watched:
            automation = silence_automation(item, block_id)
            created[automation.name] = upsert_automation(client, automation)
        fallback = [(d.name, d.id) for d in fallback_deployments(client, None)]
        silence = [i for n, i in created.items() if n.startswith(SILENT_PREFIX)]
        engine = engine_automation(fallback, silence, block_id, engine_after_s)
        created[ENGINE_AUTOMATION] = upsert_automation(client, engine)
    return {
        "automations": {name: str(automation_id) for name, automation_id in created.items()},
        "telegram": block_id is not None,
        "watched": [w.name for w in watched],
    }
