"""The one service layer every face (REST, WebSocket, MCP, the dashboard) calls.

Each operation checks the caller's tier, runs the EXISTING Kestrel function in the API's
trading mode (kestrel.manual for orders, cancels, closes and moved stops; kestrel.risk.controls
for the emergency stop; kestrel.operator.live for settings, whose REAL guardrails ask for a
confirmation token on a riskier change), and, when it may change anything, records an audit
event naming the key. Faces only translate: the same call gives the same answer and the
same side effects whichever way it arrived.

Errors leave as ServiceError (a status, a stable code and a message that says what to fix);
nothing here ever echoes a secret.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from api.auth.tiers import AuthError, Principal, Tier
from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, ConfirmationRefused, KestrelError, ManualError
from kestrel.manual import cancel_order, confirm_token, submit
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Event, EventType, OrderStatus, PositionStatus, utcnow
from kestrel.models.manual import ManualRequest
from kestrel.money import to_decimal
from kestrel.operator.risk_changes import SettingsRequest
from kestrel.operator.tokens import peek_token
from kestrel.risk.controls import circuit_breaker_state, emergency_stop_state, set_emergency_stop
from kestrel.runtime import Runtime
from kestrel.store.base import Store

if TYPE_CHECKING:
    from kestrel.backtest.results import BacktestResult

log = logging.getLogger(__name__)

DECISION_TYPES = (EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED)
CLOSED_STATUSES = (
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.REJECTED,
    OrderStatus.FAILED,
)
MAX_LIMIT = 1000
_REQUEST = TypeAdapter(ManualRequest)


class ServiceError(KestrelError):
    """A refusal any face can render: HTTP-like status, stable code, what to fix."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Backend:
    """What the service acts on: the configured settings, the mode's store and a way to get
    the runtime with the live settings applied (built lazily: the exchange is only needed
    when something trades or reads prices)."""

    base: KestrelSettings
    store: Store
    runtime: Callable[[], Runtime]

    def __post_init__(self) -> None:
        # A StoreRouter follows the caller's mode ContextVar, which request threads do not
        # set: pin this API's mode's own store, so keys and reads never land in the other.
        from kestrel.store.router import StoreRouter

        if isinstance(self.store, StoreRouter):
            self.store = self.store.backend(self.base.mode)

    @property
    def mode(self) -> TradingMode:
        return self.base.mode


class ManualCall(BaseModel):
    """A manual action as the faces receive it: the request, and for REAL the token the
    preview returned (`confirm`), or `dry_run` for a preview that records nothing."""

    request: dict[str, Any] = Field(description="a place / close / close_all / move_levels request")
    confirm: str | None = Field(default=None, max_length=64)
    dry_run: bool = False


class SettingsCall(BaseModel):
    request: SettingsRequest
    confirm: str | None = Field(default=None, max_length=64)


class BacktestCall(BaseModel):
    """A backtest to run on the API's settings: a kestrel.backtest.BacktestSpec (`data_dir`:
    a folder of CSV candles on the API's host; a relative one is under the data dir)."""

    spec: dict[str, Any] = Field(description="BacktestSpec fields: data_dir, symbols, start...")
    charts: bool = True


@dataclass
class BacktestJob:
    """A backtest the API started: running until its thread ends, then done or failed."""

    thread: threading.Thread
    state: str = "running"
    error: str = ""


class ApiService:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.backtest_jobs: dict[str, BacktestJob] = {}
        self._jobs_lock = threading.Lock()

    @property
    def mode(self) -> TradingMode:
        return self.backend.mode

    @property
    def store(self) -> Store:
        return self.backend.store

    @contextmanager
    def _mode(self) -> Iterator[None]:
        with trading_mode(self.mode):
            yield

    # -- reads -------------------------------------------------------------------------------
    def status(self, who: Principal) -> dict[str, Any]:
        who.require(Tier.READ, "status")
        with self._mode():
            stop = emergency_stop_state(self.store)
            breaker, _ = circuit_breaker_state(self.store)
            live = list(self.store.iter_live_orders())
            positions = self.store.list_positions(status=PositionStatus.OPEN)
            last_seq = self._last_seq()
        return {
            "mode": self.mode.value,
            "emergency_stop": stop.model_dump(mode="json"),
            "circuit_breaker": breaker.model_dump(mode="json"),
            "live_orders": len(live),
            "open_positions": len(positions),
            "watchlist": [item.symbol for item in self.backend.base.watchlist],
            "last_event_seq": last_seq,
            "key": {"name": who.name, "tiers": sorted(t.value for t in who.tiers)},
        }

    def _last_seq(self) -> int:
        from kestrel.reporting.dashboards import last_event_seq

        return last_event_seq(self.store)

    def balances(self, who: Principal) -> dict[str, Any]:
        who.require(Tier.READ, "balances")
        with self._mode():
            raw = self._exchange_call(lambda rt: rt.exchange.fetch_balance())
        out: dict[str, dict[str, str]] = {}
        for part in ("free", "used", "total"):
            for currency, amount in (raw.get(part) or {}).items():
                if amount is None:
                    continue
                out.setdefault(currency, {})[part] = str(to_decimal(amount))
        return {"mode": self.mode.value, "balances": out}

    def positions(self, who: Principal, status: str = "OPEN") -> list[dict[str, Any]]:
        who.require(Tier.READ, "positions")
        chosen = None if status.upper() == "ALL" else self._enum(PositionStatus, status, "status")
        with self._mode():
            found = self.store.list_positions(status=chosen)
        return [p.model_dump(mode="json") for p in found]

    def orders(self, who: Principal, which: str = "open", limit: int = 200) -> list[dict[str, Any]]:
        who.require(Tier.READ, "orders")
        limit = self._limit(limit)
        with self._mode():
            if which == "open":
                found = list(self.store.iter_live_orders())
            elif which == "closed":
                found = self.store.list_orders(statuses=CLOSED_STATUSES)
            else:
                raise ServiceError(422, "bad_argument", "which: open or closed")
        return [o.model_dump(mode="json") for o in found[-limit:]]

    def decisions(
        self, who: Principal, symbol: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        who.require(Tier.READ, "decisions")
        limit = self._limit(limit)
        with self._mode():
            found = self.store.list_events(types=DECISION_TYPES, symbol=symbol)
        return [e.model_dump(mode="json") for e in found[-limit:]]

    def events(
        self, who: Principal, after_seq: int = 0, limit: int = 100, types: list[str] | None = None
    ) -> list[dict[str, Any]]:
        who.require(Tier.READ, "events")
        limit = self._limit(limit)
        kinds = [self._enum(EventType, t, "types") for t in types] if types else None
        with self._mode():
            found = self.store.list_events(types=kinds, after_seq=max(0, after_seq), limit=limit)
        return [e.model_dump(mode="json") for e in found]

    def prices(self, who: Principal, symbols: list[str] | None = None) -> dict[str, str]:
        who.require(Tier.READ, "prices")
        wanted = symbols or [item.symbol for item in self.backend.base.watchlist]
        out: dict[str, str] = {}
        with self._mode():
            for symbol in wanted:
                ticker = self._ticker(symbol)
                if ticker.get("last") is not None:
                    out[symbol] = str(to_decimal(ticker["last"]))
        return out

    def _ticker(self, symbol: str) -> dict[str, Any]:
        found: dict[str, Any] = self._exchange_call(lambda rt: rt.exchange.fetch_ticker(symbol))
        return found

    def candles(
        self, who: Principal, symbol: str, timeframe: str = "1h", limit: int = 200
    ) -> list[list[Any]]:
        who.require(Tier.READ, "candles")
        limit = min(self._limit(limit), 500)
        with self._mode():
            rows = self._exchange_call(
                lambda rt: rt.exchange.fetch_ohlcv(symbol, timeframe, limit=limit)
            )
        return [list(row) for row in rows]

    def settings(self, who: Principal) -> dict[str, Any]:
        who.require(Tier.READ, "settings")
        from kestrel.operator.live import describe

        with self._mode():
            try:
                return describe(self.backend.base, self.store)
            except ConfigError as exc:
                raise ServiceError(409, "settings_invalid", str(exc)) from None

    # -- backtests (kestrel.backtest.storage: the results `kestrel backtest` stores) ---------
    def backtests(self, who: Principal) -> list[dict[str, Any]]:
        """Every stored backtest, oldest first: id, range, strategies and headline metrics."""
        who.require(Tier.READ, "backtests")
        from kestrel.backtest.storage import list_results

        return [_backtest_row(r) for r in list_results(self.backend.base.data_dir)]

    def backtest(self, who: Principal, result_id: str) -> dict[str, Any]:
        """One stored backtest: metrics, the per-symbol / exit-reason / books tables, the
        trade list, the strategy identities and which charts were drawn (the equity curve
        itself is the equity chart, not repeated here)."""
        who.require(Tier.READ, "backtest")
        result = self._load_backtest(result_id)
        out = result.model_dump(mode="json", exclude={"equity"})
        out["charts"] = self._charts_of(result.id)
        return out

    def compare_backtests(self, who: Principal, first: str, second: str) -> dict[str, Any]:
        """Two stored backtests' metrics side by side, with b - a where both are numbers."""
        who.require(Tier.READ, "backtest compare")
        from kestrel.backtest.results import compare_results

        return compare_results(self._load_backtest(first), self._load_backtest(second))

    def backtest_chart(self, who: Principal, result_id: str, chart: str = "equity") -> Path:
        """The stored PNG of a backtest's equity (or prices) chart; 404 when not drawn."""
        who.require(Tier.READ, "backtest chart")
        from kestrel.backtest.storage import BadResultId, chart_file

        try:
            path = chart_file(self.backend.base.data_dir, result_id, chart)
        except BadResultId as exc:
            raise ServiceError(422, "bad_backtest_id", str(exc)) from None
        except ConfigError as exc:
            raise ServiceError(404, "not_found", str(exc)) from None
        if path is None:
            raise ServiceError(
                404, "not_found", f"backtest {result_id!r} has no {chart} chart (run with charts)"
            )
        return path

    def _load_backtest(self, result_id: str) -> BacktestResult:
        from kestrel.backtest.storage import BadResultId, load

        try:
            return load(self.backend.base.data_dir, result_id)
        except BadResultId as exc:
            raise ServiceError(422, "bad_backtest_id", str(exc)) from None
        except ConfigError as exc:
            self._job_state(result_id)
            raise ServiceError(404, "not_found", str(exc)) from None
        except ValidationError:
            raise ServiceError(
                409, "backtest_unreadable", f"backtest {result_id!r} is stored but unreadable"
            ) from None

    def _job_state(self, result_id: str) -> None:
        """A result not stored yet: say so if the API is running it or it failed."""
        job = self.backtest_jobs.get(result_id)
        if job is not None and job.state == "running":
            raise ServiceError(409, "backtest_running", f"backtest {result_id!r} is still running")
        if job is not None and job.state == "failed":
            raise ServiceError(
                422, "backtest_failed", f"backtest {result_id!r} failed: {job.error}"
            )

    def run_backtest(self, who: Principal, call: BacktestCall) -> dict[str, Any]:
        """ADMIN: start kestrel.backtest.run_backtest on the API's settings in a worker
        thread (one at a time: the box is small) and answer its id at once; the result is
        then at GET /api/backtests/{id} (409 backtest_running until it is stored)."""
        who.require(Tier.ADMIN, "backtest run")
        from kestrel.backtest import BacktestSpec
        from kestrel.backtest.storage import unused_id

        data_dir = self.backend.base.data_dir
        fields = dict(call.spec)
        try:
            spec = BacktestSpec.model_validate(fields)
        except ValidationError as exc:
            raise ServiceError(422, "bad_request", _problems(exc)) from None
        spec = spec.model_copy(update={"data_dir": Path(data_dir) / spec.data_dir})
        if not spec.data_dir.is_dir():
            raise ServiceError(422, "bad_request", f"data_dir {spec.data_dir}: no such folder")
        with self._audit(who, "backtest.run", spec.model_dump(mode="json")) as note:
            with self._jobs_lock:
                if any(job.state == "running" for job in self.backtest_jobs.values()):
                    raise ServiceError(
                        409, "busy", "a backtest is already running; wait until it is stored"
                    )
                result_id = unused_id(
                    data_dir, f"api-{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
                )
                job = BacktestJob(
                    threading.Thread(
                        target=self._backtest_worker,
                        args=(result_id, spec, call.charts),
                        name=f"backtest-{result_id}",
                        daemon=True,
                    )
                )
                self.backtest_jobs[result_id] = job
                job.thread.start()
            note["outcome"] = f"started {result_id}"
        return {"id": result_id, "state": "running"}

    def _backtest_worker(self, result_id: str, spec: Any, charts: bool) -> None:
        from kestrel.backtest import run_backtest

        job = self.backtest_jobs[result_id]
        try:
            run_backtest(self.backend.base, spec, charts=charts, result_id=result_id)
        except (KestrelError, ValueError) as exc:
            job.error, job.state = str(exc)[:500], "failed"
        except Exception as exc:  # a worker thread must end in a state, never silently
            log.exception("backtest %s failed", result_id)
            job.error, job.state = type(exc).__name__, "failed"
        else:
            job.state = "done"

    def _charts_of(self, result_id: str) -> list[str]:
        from kestrel.backtest.storage import CHARTS, result_dir

        folder = result_dir(self.backend.base.data_dir, result_id)
        return [name for name, file in CHARTS.items() if (folder / file).is_file()]

    # -- changes -----------------------------------------------------------------------------
    def set_stop(self, who: Principal, *, active: bool, reason: str, action: str) -> dict[str, Any]:
        """Pause / emergency stop (active) and resume: the one persistent kill switch every
        trading cycle checks. Stopping needs the mode's trade tier or ADMIN; so does resuming."""
        self._require_control(who, action)
        reason = (reason or action).strip()[:200]
        with self._audit(who, action, {"reason": reason}), self._mode():
            state = set_emergency_stop(self.store, active=active, reason=reason, by=who.actor)
        return {"mode": self.mode.value, "emergency_stop": state.model_dump(mode="json")}

    def manual(self, who: Principal, call: ManualCall) -> dict[str, Any]:
        """Place / close / close-all / move stop through kestrel.manual.submit. REAL: the
        first call returns a preview and a token; the same call with `confirm` acts."""
        who.require_trade(self.mode, "manual trading")
        try:
            request = _REQUEST.validate_python(call.request)
        except ValidationError as exc:
            raise ServiceError(422, "bad_request", _problems(exc)) from None
        params = {
            "request": request.model_dump(mode="json"),
            "dry_run": call.dry_run,
            "confirmed": call.confirm is not None,
        }
        with self._audit(who, f"manual.{request.kind}", params) as note:
            if call.confirm is not None:
                self._check_token(who, call.confirm)
            with self._mode():
                outcome = self._trade(
                    lambda rt: submit(
                        rt, request, actor=who.actor, confirm=call.confirm, dry_run=call.dry_run
                    )
                )
            note["outcome"] = outcome.status.value
        return outcome.model_dump(mode="json")

    def confirm(self, who: Principal, token: str) -> dict[str, Any]:
        """Run exactly the manual action a REAL preview's token was issued for."""
        who.require_trade(self.mode, "confirm")
        with self._audit(who, "manual.confirm", {}) as note:
            self._check_token(who, token)
            with self._mode():
                outcome = self._trade(lambda rt: confirm_token(rt, token, actor=who.actor))
            note["outcome"] = outcome.status.value
        return outcome.model_dump(mode="json")

    def cancel(self, who: Principal, order_ref: str) -> dict[str, Any]:
        who.require_trade(self.mode, "cancel")
        with self._audit(who, "manual.cancel", {"order": order_ref}) as note:
            with self._mode():
                outcome = self._trade(lambda rt: cancel_order(rt, order_ref, actor=who.actor))
            note["outcome"] = "canceled" if outcome.canceled else outcome.order.status.value
        return outcome.model_dump(mode="json")

    def change_settings(self, who: Principal, call: SettingsCall) -> list[dict[str, Any]]:
        """A live settings change (set / reset / watch-add / watch-remove). In REAL a change
        that loosens a risk limit answers with a token; repeat it with `confirm` to apply."""
        who.require(Tier.ADMIN, "settings change")
        from kestrel.operator.live import SettingsError, apply_request, exchange_markets

        params = {
            "request": call.request.model_dump(mode="json"),
            "confirmed": call.confirm is not None,
        }
        with self._audit(who, f"settings.{call.request.action}", params) as note:
            if call.confirm is not None:
                self._check_token(who, call.confirm)
            with self._mode():
                try:
                    done = apply_request(
                        self.store,
                        self.backend.base,
                        call.request,
                        by=who.actor,
                        confirm=call.confirm,
                        markets=lambda: exchange_markets(self.backend.base, self.store),
                    )
                except (SettingsError, ConfigError) as exc:
                    raise ServiceError(422, "bad_setting", str(exc)) from None
                except ConfirmationRefused as exc:
                    raise ServiceError(403, f"confirmation_{exc.reason}", str(exc)) from None
            note["outcome"] = [_change_result(c.needs_confirmation, c.changed) for c in done]
        return [c.model_dump(mode="json") for c in done]

    # -- helpers -----------------------------------------------------------------------------
    def _require_control(self, who: Principal, action: str) -> None:
        if who.mode is not self.mode:
            who.require_trade(self.mode, action)  # raises wrong_mode
        if not who.has(Tier.ADMIN):
            who.require_trade(self.mode, action)

    def _check_token(self, who: Principal, token: str) -> None:
        """A confirmation token confirms only for the key that asked for the preview (another
        key's attempt is refused without burning it), and only once: a used token is refused
        here even where the action would now change nothing (a settings value already set)."""
        with self._mode():
            record = peek_token(self.store, token)
        if record is None:
            return  # unknown: the kestrel function refuses it with its SECURITY event
        if record.issued_by != who.actor:
            raise ServiceError(
                403, "confirmation_not_yours", "this confirmation token was issued to another key"
            )
        if record.used_at is not None:
            raise ServiceError(
                403,
                "confirmation_used",
                f"this confirmation token was already used at {record.used_at:%H:%M:%S} UTC; "
                "nothing was done; preview again",
            )

    def _trade[T](self, action: Callable[[Runtime], T]) -> T:
        try:
            rt = self.backend.runtime()
        except KestrelError as exc:
            raise ServiceError(503, "unavailable", f"{type(exc).__name__}: {exc}") from None
        try:
            return action(rt)
        except ConfirmationRefused as exc:
            raise ServiceError(403, f"confirmation_{exc.reason}", str(exc)) from None
        except ManualError as exc:
            raise ServiceError(409, "refused", str(exc)) from None
        except ConfigError as exc:
            raise ServiceError(422, "bad_setting", str(exc)) from None
        except KestrelError as exc:
            raise ServiceError(502, "failed", f"{type(exc).__name__}: {exc}") from None

    def _exchange_call(self, call: Callable[[Runtime], Any]) -> Any:
        try:
            return call(self.backend.runtime())
        except KestrelError as exc:
            raise ServiceError(502, "exchange", f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # ccxt errors and the like: report, never crash the API
            raise ServiceError(502, "exchange", f"{type(exc).__name__}") from None

    @contextmanager
    def _audit(
        self, who: Principal, action: str, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Record who asked for what and how it ended, whether it worked or was refused."""
        note: dict[str, Any] = {}
        try:
            yield note
        except (ServiceError, AuthError) as exc:
            self._record(who, action, params, f"refused: {exc.code}")
            raise
        except Exception as exc:
            self._record(who, action, params, f"error: {type(exc).__name__}")
            raise
        else:
            self._record(who, action, params, note.get("outcome", "done"))

    def _record(self, who: Principal, action: str, params: dict[str, Any], result: Any) -> None:
        moment = utcnow()
        event = Event(
            event_id=f"security:api-audit:{who.key_id}:{action}:{moment.isoformat()}",
            type=EventType.SECURITY,
            mode=self.mode,
            reasons=["API_AUDIT"],
            message=f"API {action} by key {who.name!r}: {result}",
            data={
                "key": who.name,
                "key_id": who.key_id,
                "action": action,
                "params": params,
                "result": result,
                "client": who.client,
            },
            created_at=moment,
        )
        try:
            with self._mode():
                self.store.append_events([event])
        except KestrelError:  # the audit must not hide the action's own answer
            log.exception("API audit event not stored for %s", action)

    @staticmethod
    def _limit(limit: int) -> int:
        if not 1 <= limit <= MAX_LIMIT:
            raise ServiceError(422, "bad_argument", f"limit must be in 1..{MAX_LIMIT}")
        return limit

    @staticmethod
    def _enum[E](kind: Callable[[str], E], value: str, name: str) -> E:
        try:
            return kind(value.upper())
        except ValueError:
            raise ServiceError(422, "bad_argument", f"{name}: unknown value {value!r}") from None


def _backtest_row(result: BacktestResult) -> dict[str, Any]:
    m = result.metrics
    return {
        "id": result.id,
        "label": result.label,
        "status": result.status,
        "created_at": result.created_at.isoformat(),
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "strategies": result.strategies,
        "strategy_ids": result.strategy_ids,
        "trades": m.trade_count,
        "total_return": m.total_return,
        "max_drawdown": m.max_drawdown,
        "sharpe": m.sharpe,
        "reconciled": result.reconciled,
    }


def _change_result(needs_confirmation: bool, changed: bool) -> str:
    if needs_confirmation:
        return "needs_confirmation"
    return "changed" if changed else "same"


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    ).replace("Value error, ", "")


__all__ = [
    "ApiService",
    "Backend",
    "BacktestCall",
    "BacktestJob",
    "ManualCall",
    "ServiceError",
    "SettingsCall",
]
