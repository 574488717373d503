"""Which is active: the live engine, or the per-job schedules it stands in for.

While the live engine runs, it does the work of the order-sync, position-monitor and
notifications deployments and of every trading-cycle deployment whose symbols it streams; their
schedules would only start a process every minute to do it again (the idle cost the engine
exists to remove). So the engine takes over: it pauses those deployments (Prefect's pause
stops their schedules; a run started by hand, from the UI or `prefect deployment run`, still
runs) and the dead-man automations that watch them for silence, and it says so in one INFO
line and a `kestrel.live-engine.took-over` event.

It hands back on a clean stop: it resumes exactly what it paused (a deployment paused by hand
before it started stays paused). If it dies instead (killed, crashed, its loop stuck), its
heartbeat events stop and the server's dead-man automation (deployments/automations.py,
`kestrel-deadman-live-engine`) resumes the schedules and says so on Telegram: the schedules
are the fallback while the engine is down. Every heartbeat re-asserts the takeover, so a
`kestrel serve` restart that re-applies the deployments unpaused is corrected within one beat.

A trading-cycle deployment whose symbols are not all in the engine's watchlist (or that
takes its watchlist from settings rather than its `items` parameter) keeps its schedule.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

__all__ = [
    "ENGINE_RESOURCE_PREFIX",
    "HEARTBEAT_EVENT",
    "SILENT_PREFIX",
    "STOPPED_EVENT",
    "TOOK_OVER_EVENT",
    "Handover",
    "Keeper",
    "covered_by",
    "engine_active",
    "fallback_deployments",
]

log = logging.getLogger(__name__)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger where there is one (so the UI shows the line), else ours."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return log


HEARTBEAT_EVENT = "kestrel.live-engine.heartbeat"
STOPPED_EVENT = "kestrel.live-engine.stopped"
TOOK_OVER_EVENT = "kestrel.live-engine.took-over"
ENGINE_RESOURCE_PREFIX = "kestrel.live-engine."
UPKEEP_FLOWS = ("kestrel-order-sync", "kestrel-position-monitor", "kestrel-notifications")
CYCLE_FLOW = "kestrel-trading-cycle"
SILENT_PREFIX = "kestrel-deadman-silent-"  # the silence alarm of a deployment: this + its name


Watched = frozenset[tuple[str, str]]  # (symbol, timeframe) the engine streams


def covered_by(parameters: dict[str, Any], watchlist: Watched) -> bool:
    """True if a trading-cycle deployment's `items` are all symbols the engine trades."""
    items = parameters.get("items") or []
    if not items:
        return False  # its watchlist comes from settings or a block: not known here
    wanted = {(str(i.get("symbol")), str(i.get("timeframe", "1h"))) for i in items}
    return wanted <= watchlist


def fallback_deployments(
    client: SyncPrefectClient, watchlist: Watched | None
) -> list[DeploymentResponse]:
    """The deployments whose schedules the engine stands in for. `watchlist` None: every
    trading-cycle deployment (what the dead-man's switch resumes)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    flows = {f.id: f.name for f in client.read_flows()}
    found = client.read_deployments(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[*UPKEEP_FLOWS, CYCLE_FLOW]))
    )
    chosen = [
        d
        for d in found
        if flows.get(d.flow_id) != CYCLE_FLOW
        or watchlist is None
        or covered_by(d.parameters, watchlist)
    ]
    return sorted(chosen, key=lambda d: d.name)


@dataclass
class Handover:
    """The engine's side of the handover, for one engine run.

    `engine_id` names the engine in its events (the flow run id): the dead-man automation
    watches each engine's heartbeats separately."""

    engine_id: str
    watchlist: Watched
    paused: dict[UUID, str] = field(default_factory=dict)  # deployment id -> name
    paused_automations: dict[UUID, str] = field(default_factory=dict)

    @property
    def resource(self) -> dict[str, str]:
        return {
            "prefect.resource.id": ENGINE_RESOURCE_PREFIX + self.engine_id,
            "prefect.resource.name": "Kestrel live engine",
        }

    def take_over(self) -> list[str]:
        """Pause the fallback schedules (again, if something resumed them); the names newly
        paused by this call."""
        from prefect import get_client

        newly: list[str] = []
        with get_client(sync_client=True) as client:
            for deployment in fallback_deployments(client, self.watchlist):
                if deployment.id in self.paused:
                    if deployment.paused:
                        continue
                elif deployment.paused:
                    continue  # paused by someone else: not ours to resume later
                client.pause_deployment(deployment.id)
                self.paused[deployment.id] = deployment.name
                newly.append(deployment.name)
            self._pause_silence(client)
        if newly:
            _logger().info(
                "the live engine is active: paused the schedules of %s (they resume when it "
                "stops, or by the dead-man's switch if it dies)",
                ", ".join(newly),
            )
            self._emit(TOOK_OVER_EVENT, {"paused": sorted(self.paused.values())})
        return newly

    def _pause_silence(self, client: SyncPrefectClient) -> None:
        """The silence alarms of the paused deployments would fire while the engine works."""
        names = {SILENT_PREFIX + name for name in self.paused.values()}
        for automation in client.read_automations():
            if automation.name in names and automation.enabled:
                client.pause_automation(automation.id)
                self.paused_automations[automation.id] = automation.name

    def heartbeat(self, stats: str) -> None:
        """Say the engine is alive, then re-assert the takeover."""
        self._emit(HEARTBEAT_EVENT, {"stats": stats})
        self.take_over()

    def hand_back(self, why: str) -> list[str]:
        """Resume what this engine paused; the names resumed."""
        from prefect import get_client

        resumed: list[str] = []
        with get_client(sync_client=True) as client:
            for deployment_id, name in sorted(self.paused.items(), key=lambda kv: kv[1]):
                client.resume_deployment(deployment_id)
                resumed.append(name)
            for automation_id in self.paused_automations:
                client.resume_automation(automation_id)
        self.paused.clear()
        self.paused_automations.clear()
        self._emit(STOPPED_EVENT, {"why": why, "resumed": resumed})
        if resumed:
            names = ", ".join(resumed)
            _logger().info("the live engine stopped (%s): resumed the schedules of %s", why, names)
        return resumed

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        from prefect.events import emit_event

        emit_event(event=event, resource=self.resource, payload=payload)


HEARTBEAT_S = 30.0
STUCK_AFTER_S = 20.0  # the engine's loop checks every second; this long without one is stuck


class Keeper:
    """One step every `tick_s` beside a running engine: drain notifications when due, and
    every `beat_s` a heartbeat while the engine's loop is alive. A stuck loop stops the
    beats, so the dead-man's switch hands the schedules back. The Prefect server being
    briefly unreachable is logged and retried at the next beat: trading does not stop."""

    def __init__(
        self,
        handover: Handover,
        alive: Callable[[float], str | None],
        drain: Callable[[], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        beat_s: float = HEARTBEAT_S,
    ) -> None:
        """alive(now): the engine's stats line, or None when its loop is stuck."""
        self.handover = handover
        self.alive = alive
        self.drain = drain
        self.clock = clock
        self.beat_s = beat_s
        self.last_beat: float | None = None

    def step(self) -> None:
        now = self.clock()
        if self.drain is not None:
            self.drain()
        if self.last_beat is not None and now - self.last_beat < self.beat_s:
            return
        stats = self.alive(now)
        if stats is None:
            _logger().warning(
                "the live engine's loop is stuck: no heartbeat (the dead-man's switch "
                "resumes the per-job schedules if it stays so)"
            )
            return
        self.last_beat = now
        try:
            self.handover.heartbeat(stats)
        except Exception as exc:  # the server's trouble must not stop the engine
            _logger().warning(
                "heartbeat not sent (%s: %s); next try in %.0f s",
                type(exc).__name__,
                exc,
                self.beat_s,
            )


@contextmanager
def engine_active(keeper: Keeper, tick_s: float = 2.0) -> Iterator[None]:
    """Take over, run the keeper's steps on a daemon thread, hand back on the way out
    (however the engine ended)."""
    try:
        keeper.handover.take_over()
    except Exception as exc:
        _logger().warning(
            "could not pause the per-job schedules (%s: %s): they keep running beside the "
            "engine (safe: symbol leases and candle claims), at their cost",
            type(exc).__name__,
            exc,
        )
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(tick_s):
            try:
                keeper.step()
            except Exception:
                _logger().exception("live engine keeper step failed; next in %.0f s", tick_s)

    context = contextvars.copy_context()  # the keeper's lines belong to the engine's run
    thread = threading.Thread(
        target=context.run, args=(loop,), name="live-engine-keeper", daemon=True
    )
    thread.start()
    why = "the engine stopped"
    try:
        yield
    except BaseException as exc:
        why = f"the engine ended with {type(exc).__name__}"
        raise
    finally:
        stop.set()
        thread.join()
        try:
            keeper.handover.hand_back(why)
        except Exception as exc:
            _logger().warning(
                "could not resume the per-job schedules (%s: %s): the dead-man's switch "
                "resumes them when the heartbeats are missed",
                type(exc).__name__,
                exc,
            )
