"""prefect.yaml as data: the one place deployments are declared. `prefect deploy --all` reads
it for workers; `kestrel serve` turns the same entries into served deployments here, so the
two modes cannot drift apart (names, parameters, schedules, concurrency).
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field

from deployments.steps import project_root

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

PREFECT_FILE = "prefect.yaml"


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    interval: float | None = None
    cron: str | None = None
    timezone: str | None = None
    active: bool = True


class ConcurrencySpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int
    collision_strategy: str = "ENQUEUE"


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    entrypoint: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    concurrency_limit: ConcurrencySpec | int | None = None
    work_pool: dict[str, Any] = Field(default_factory=dict)

    @property
    def module_and_attribute(self) -> tuple[str, str]:
        path, _, attribute = self.entrypoint.partition(":")
        module = path.removesuffix(".py").replace("/", ".")
        return module, attribute

    def load_flow(self) -> Flow[..., Any]:
        module_name, attribute = self.module_and_attribute
        found: Flow[..., Any] = getattr(importlib.import_module(module_name), attribute)
        return found


def load_specs(path: Path | None = None) -> list[DeploymentSpec]:
    file = path or project_root() / PREFECT_FILE
    document = yaml.safe_load(file.read_text())
    return [DeploymentSpec.model_validate(entry) for entry in document.get("deployments") or []]


def runner_deployment(
    spec: DeploymentSpec, *, parameter_overrides: dict[str, Any] | None = None
) -> RunnerDeployment:
    """A served deployment equal to what `prefect deploy` makes of the same entry (minus the
    work pool, which serving does not use)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron, Interval, Schedule
    from prefect.types.entrypoint import EntrypointType

    schedules: list[Schedule] = []
    for item in spec.schedules:
        if item.cron:
            schedules.append(Cron(item.cron, timezone=item.timezone, active=item.active))
        elif item.interval:
            schedules.append(
                Interval(
                    timedelta(seconds=item.interval), timezone=item.timezone, active=item.active
                )
            )
    limit: int | ConcurrencyLimitConfig | None
    if isinstance(spec.concurrency_limit, ConcurrencySpec):
        limit = ConcurrencyLimitConfig(
            limit=spec.concurrency_limit.limit,
            collision_strategy=ConcurrencyLimitStrategy(spec.concurrency_limit.collision_strategy),
        )
    else:
        limit = spec.concurrency_limit
    parameters = {**spec.parameters, **(parameter_overrides or {})}
    deployment = spec.load_flow().to_deployment(
        name=spec.name,
        description=spec.description,
        tags=spec.tags,
        parameters=parameters,
        schedules=schedules,
        concurrency_limit=limit,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)
