"""The task runner a trading cycle fans its symbols out on, chosen by settings (ops).

threads (default): one process, at most `max_workers` symbol steps at once; the steps are
I/O bound (exchange calls), so threads are enough on one machine. dask: a Dask cluster, at
`dask_address` or a temporary LocalCluster, for watchlists that outgrow one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from kestrel.config.ops import OpsSettings


def task_runner_for(ops: OpsSettings) -> TaskRunner[Any]:
    if ops.task_runner == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        if ops.dask_address:
            return DaskTaskRunner(address=ops.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": ops.dask_workers,
                "threads_per_worker": ops.dask_threads_per_worker,
                "processes": ops.dask_processes,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=ops.max_workers)


@contextmanager
def on_task_runner(runner: TaskRunner[Any]) -> Iterator[None]:
    """Submit this flow run's tasks to `runner` inside the block. The runner depends on the
    run's settings, known only once the flow has started, so it cannot be the flow's own."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None:
        raise RuntimeError("on_task_runner is for use inside a flow run")
    with runner as started, context.model_copy(update={"task_runner": started}):
        yield
