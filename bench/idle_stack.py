"""The served stack's idle cost, as a user runs it: a Prefect server with its scheduler,
`kestrel serve` of the per-job deployments (order-sync, position-monitor, notifications,
trading-cycle-majors) in REAL mode against the Binance emulator, first alone (today's
scheduled polling), then with `kestrel live run` beside it (the engine takes over and pauses
those schedules). Nothing happens on the market in either window.

    .venv/bin/python bench/idle_stack.py --csv ../shared/data/ohlcv/BTC_USDT-1h.csv \
        [--minutes 10]

Per window: CPU seconds per minute of every process of the stack (server, serve and the
run processes it starts, the engine; the emulator is the exchange and is not counted), flow
runs started per minute, and exchange requests per minute (REST calls the emulator counted,
by endpoint, plus WebSocket messages the engine sent).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.live import KEY, SECRET, Emulator
from deployments.server import LocalPrefectServer

REPO = Path(__file__).resolve().parents[1]
KESTREL = REPO / ".venv" / "bin" / "kestrel"
DEPLOYMENTS = ["order-sync", "position-monitor", "notifications", "trading-cycle-majors"]


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of these processes and of their reaped children (the run
    processes `kestrel serve` started and waited for), plus their live descendants."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in family:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def flow_runs_started(api_url: str, since: float) -> int:
    """Runs that actually started (a process) since `since`: not the scheduler's future runs,
    not the ones a collision strategy cancelled before they ran."""
    from datetime import UTC, datetime

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    started = [StateType.RUNNING, StateType.COMPLETED, StateType.FAILED, StateType.CRASHED]
    after = datetime.fromtimestamp(since, UTC)
    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        return client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=after),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=started)),
            )
        )


def wait_for_takeover(api_url: str, timeout_s: float = 600) -> None:
    """Until the engine has paused the per-job deployments and their last runs ended."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    running = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
    )
    deadline = time.monotonic() + timeout_s
    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        while time.monotonic() < deadline:
            deployments = [d for d in client.read_deployments() if d.name in DEPLOYMENTS]
            busy = client.count_flow_runs(flow_run_filter=running)  # the engine's own: 1
            if deployments and all(d.paused for d in deployments) and busy <= 1:
                return
            time.sleep(2)
    raise SystemExit("the live engine did not take over within 10 minutes (see the log)")


def measure(
    label: str, pids: dict[str, int], emu: Emulator, api_url: str, seconds: float
) -> dict[str, Any]:
    emu.admin("DELETE", "requests")
    ws0 = emu.admin("GET", "ws/counts")["received"]
    each0 = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    wall0 = time.time()
    time.sleep(seconds)
    each = {name: cpu_seconds([pid]) - each0[name] for name, pid in pids.items()}
    cpu = sum(each.values())
    requests = emu.admin("GET", "requests")
    ws = emu.admin("GET", "ws/counts")["received"] - ws0
    minutes = seconds / 60
    result = {
        "label": label,
        "cpu_s_per_min": cpu / minutes,
        "core_pct": cpu / seconds * 100,
        "flow_runs_per_min": flow_runs_started(api_url, wall0) / minutes,
        "requests_per_min": sum(requests.values()) / minutes,
        "ws_messages_per_min": ws / minutes,
        "by_endpoint": {k: round(v / minutes, 1) for k, v in sorted(requests.items())},
        "cpu_by_process": {k: round(v / minutes, 2) for k, v in each.items()},
    }
    print(
        f"{label}: {result['cpu_s_per_min']:.2f} CPU s/min ({result['core_pct']:.1f}% of a "
        f"core), {result['flow_runs_per_min']:.1f} flow runs/min, "
        f"{result['requests_per_min']:.1f} exchange requests/min "
        f"(+{result['ws_messages_per_min']:.1f} WebSocket messages/min) "
        f"{result['by_endpoint']}; CPU s/min by process {result['cpu_by_process']}",
        flush=True,
    )
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=10.0, help="per window")
    p.add_argument("--warmup", type=float, default=90.0, help="seconds before each window")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        emu = Emulator(args.csv, 2, tmp, start=300)  # BTC/USDT, ETH/USDT
        server = LocalPrefectServer(tmp / "prefect-server", scheduler=True, ui=False)
        server.start(timeout_s=240)
        assert server.process is not None
        server_pid = server.process.pid
        (tmp / "kestrel.toml").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KESTREL_", "PREFECT_"))}
        env.update(
            {
                "PREFECT_API_URL": server.api_url,
                "PREFECT_HOME": str(tmp / "prefect-client"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "KESTREL_CONFIG": str(tmp / "kestrel.toml"),
                "KESTREL_DATA_DIR": str(tmp / "data"),
                "KESTREL_MODE": "REAL",
                "KESTREL_EXCHANGE_API__URL": emu.url,
                "KESTREL_EXCHANGE_API__WS_URL": emu.ws_url,
                "KESTREL_BINANCE_API_KEY": KEY,
                "KESTREL_BINANCE_API_SECRET": SECRET,
                "KESTREL_WATCHLIST": json.dumps(
                    [{"symbol": "BTC/USDT", "timeframe": "1h"}, {"symbol": "ETH/USDT"}]
                ),
            }
        )
        out = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed below
        serve_args = [str(KESTREL), "serve", "--no-ui", "--no-deadman"]
        for name in DEPLOYMENTS:
            serve_args += ["-d", name]
        serve = subprocess.Popen(serve_args, cwd=REPO, env=env, stdout=out, stderr=out)
        engine: subprocess.Popen[bytes] | None = None
        try:
            time.sleep(args.warmup)
            seconds = args.minutes * 60
            stack = {"prefect server": server_pid, "kestrel serve + its runs": serve.pid}
            polling = measure("scheduled polling", stack, emu, server.api_url, seconds)
            engine = subprocess.Popen(
                [str(KESTREL), "live", "run"], cwd=REPO, env=env, stdout=out, stderr=out
            )
            wait_for_takeover(server.api_url)
            time.sleep(args.warmup)
            live = measure(
                "live engine (schedules paused)",
                {**stack, "live engine": engine.pid},
                emu,
                server.api_url,
                seconds,
            )
            ratio = live["cpu_s_per_min"] / polling["cpu_s_per_min"]
            print(f"engine / polling CPU: {ratio:.2f}x over {args.minutes:g} min windows")
        finally:
            for proc in (engine, serve):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)
            server.stop()
            emu.stop()
            out.close()
            if os.environ.get("BENCH_SHOW_LOG"):
                print((tmp / "serve.log").read_text()[-6000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
