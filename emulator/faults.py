"""Fault injection: the failures a real exchange produces that retry/reconciliation code must
survive. Rules are queued, target a path/method, and fire on the next N matching requests.

Kinds, and what the real ccxt client raises for each:
- `timeout`: the server holds the request past the client timeout (bounded by `hang_s`, and
  released at once when the emulator stops), then drops it -> ccxt.RequestTimeout.
- `drop`: the connection is closed without a response -> ccxt.NetworkError.
- `http_error`: an HTTP 5xx from "the gateway" (non-JSON body, like a load balancer page)
  -> ccxt.ExchangeNotAvailable (504 -> ccxt.RequestTimeout).
- `rate_limit`: HTTP 429 (or 418) with Retry-After and Binance's -1003 body -> ccxt.DDoSProtection.
- `hold`: a slow exchange. The request waits at a `Gate` until the test opens it (bounded by
  `hang_s`, and opened at once when the emulator stops), then is processed and answered as
  usual: the test decides what happens while it is "in flight", with no sleeps.
- `tamper`: the request is processed, then fields of the JSON reply are replaced (`patch`; for a
  list reply, in item `item`): a reply that names another order, or carries a status ccxt does
  not know.
- `latency`: the request waits `delay_s` before it is processed, then succeeds: a slow exchange,
  the window in which two clients race (e.g. both sending one order).
With `execute=True` the request is processed first and only the response is lost: the
"order accepted but response lost" case. Visibility lag (eventual consistency) lives in the
matching engine (`VisibilityLag`); clock skew in the server.
"""

from __future__ import annotations

import fnmatch
import threading
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["timeout", "drop", "http_error", "rate_limit", "hold", "tamper", "latency"]


class Gate:
    """Where a held request waits: `arrived` is set when it gets there, `open()` lets it on."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._opened = threading.Event()

    def open(self) -> None:
        self._opened.set()

    def wait(self, timeout_s: float) -> None:
        self.arrived.set()
        self._opened.wait(timeout_s)


class FaultRule(BaseModel):
    """One queued fault. `path`/`method` of None match anything; `path` may be a glob."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(default=1, ge=1, description="how many matching requests it hits")
    path: str | None = Field(default=None, description="e.g. /api/v3/order or /api/v3/*")
    method: str | None = Field(default=None, description="GET, POST, DELETE")
    execute: bool = Field(default=False, description="process the request, then lose the reply")
    status: int = Field(default=503, ge=400, le=599, description="http_error/rate_limit status")
    retry_after_s: int = Field(default=1, ge=0, description="rate_limit Retry-After header")
    hang_s: float = Field(default=5.0, gt=0, le=120, description="timeout: how long to hold")
    delay_s: float = Field(default=0.0, ge=0, le=120, description="latency: wait before processing")
    body: str | None = Field(default=None, description="http_error body (default: HTML page)")
    gate: str | None = Field(default=None, description="hold: the name of its Gate")
    patch: dict[str, Any] = Field(default_factory=dict, description="tamper: reply fields")
    item: int = Field(default=0, description="tamper: which item of a list reply")

    def tampered(self, body: Any) -> Any:
        """`body` with `patch` applied (to item `item` of a list; a short list is left as is)."""
        if isinstance(body, list):
            if not -len(body) <= self.item < len(body):
                return body
            return [
                {**entry, **self.patch} if i == self.item % len(body) else entry
                for i, entry in enumerate(body)
            ]
        return {**body, **self.patch} if isinstance(body, dict) else body

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


class FaultPlan:
    """The queue of pending faults, shared by the HTTP threads and the test thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._gates: dict[str, Gate] = {}
        self.fired: list[tuple[str, str, str]] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first pending rule matching this request, consuming one of its `count`."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    if rule.count == 1:
                        del self._rules[i]
                    else:
                        self._rules[i] = rule.model_copy(update={"count": rule.count - 1})
                    self.fired.append((rule.kind, method, path))
                    return rule
            return None

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def gate(self, rule: FaultRule) -> Gate:
        with self._lock:
            return self._gates.setdefault(rule.gate or "", Gate())

    def open_gates(self) -> None:
        """Let every held request on (the emulator is stopping)."""
        with self._lock:
            gates = list(self._gates.values())
        for gate in gates:
            gate.open()

    # -- conveniences: the same rules, named for what a test wants to happen -------------------

    def timeout(
        self,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        hang_s: float = 5.0,
        execute: bool = False,
    ) -> FaultRule:
        return self.add(
            FaultRule(
                kind="timeout",
                count=count,
                path=path,
                method=method,
                hang_s=hang_s,
                execute=execute,
            )
        )

    def drop(
        self,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        execute: bool = False,
    ) -> FaultRule:
        return self.add(
            FaultRule(kind="drop", count=count, path=path, method=method, execute=execute)
        )

    def http_error(
        self,
        count: int = 1,
        status: int = 503,
        path: str | None = None,
        method: str | None = None,
        execute: bool = False,
        body: str | None = None,
    ) -> FaultRule:
        return self.add(
            FaultRule(
                kind="http_error",
                count=count,
                status=status,
                path=path,
                method=method,
                execute=execute,
                body=body,
            )
        )

    def rate_limit(
        self,
        count: int = 1,
        retry_after_s: int = 1,
        path: str | None = None,
        method: str | None = None,
        status: int = 429,
    ) -> FaultRule:
        return self.add(
            FaultRule(
                kind="rate_limit",
                count=count,
                retry_after_s=retry_after_s,
                path=path,
                method=method,
                status=status,
            )
        )

    def lose_response(
        self,
        count: int = 1,
        path: str = "/api/v3/order",
        method: str = "POST",
        how: Literal["drop", "http_error", "timeout"] = "drop",
        status: int = 502,
        hang_s: float = 5.0,
    ) -> FaultRule:
        """The order is created, the client never hears about it (drop, 5xx or timeout)."""
        return self.add(
            FaultRule(
                kind=how,
                count=count,
                path=path,
                method=method,
                execute=True,
                status=status,
                hang_s=hang_s,
            )
        )

    def hold(self, path: str = "/api/v3/order", method: str = "POST", hang_s: float = 60.0) -> Gate:
        """The next matching request waits until the returned gate is opened, then is processed
        and answered: a slow exchange whose answer arrives when the test says."""
        rule = self.add(
            FaultRule(kind="hold", path=path, method=method, hang_s=hang_s, gate=uuid.uuid4().hex)
        )
        return self.gate(rule)

    def tamper(
        self,
        patch: dict[str, Any],
        path: str = "/api/v3/order",
        method: str = "POST",
        item: int = 0,
        count: int = 1,
    ) -> FaultRule:
        """The next matching reply has `patch` written over its fields (item `item` of a list)."""
        return self.add(
            FaultRule(kind="tamper", path=path, method=method, patch=patch, item=item, count=count)
        )

    def latency(
        self, delay_s: float, count: int = 1, path: str | None = None, method: str | None = None
    ) -> FaultRule:
        return self.add(
            FaultRule(kind="latency", count=count, path=path, method=method, delay_s=delay_s)
        )
