"""Manual orders and closes through the automated order path.

A manual order is a decision like any other: the cycle's risk context (`cycle.risk_context`,
with the symbol's strategy profile from `strategy.resolve`), the same safety gates and rules
(`risk.gates.SAFETY_GATES`, `risk.rules.ENTRY_RULES`), the exposure caps
(`risk.sizing.caps`), the market minimums and balance (`risk.rules.check_size`), the
profile's protective levels (`risk.levels`), `decide` (client order id, stop-loss /
take-profit), the decision event, then `orders.intent_from_decision` + `orders.place` (the
lifecycle's precision, pre-checks, intent-first and lookup-before-resend, order events, and
SL/TP protection by order sync once it fills). What differs is only where the signal comes
from and the size:

- the signal is the operator's: BUY/SELL, confidence 1, the price is the limit price or the
  exchange's last price, the candle time is the symbol's latest closed candle (so the
  market-data freshness gate still applies);
- the size is what the operator asked for (base, or quote converted at the reference price),
  rounded down to the market's step, instead of the configured sizing; a size above the room
  under an exposure cap is refused with the room left (not silently clipped); the symbol's
  trade amount in the risk context is this order's value, so the amount gate checks it;
- stop-loss / take-profit: the operator's where given, else the profile's;
- closes are exits, the safe direction, as with the position monitor: no entry gate blocks
  them (emergency stop, breaker, trading disabled, freshness); a price, no exit already live,
  and the minimums and balance do. `orders.place` cancels the symbol's protective orders
  before an exit, so the coins they reserve count as free in the balance check.

Idempotency: the cycle id of a manual action is `manual|<request id>`, so its client order
ids are deterministic; the request (its fingerprint and client order ids) is recorded under
`manual_request:<id>` before anything is sent. The same request id again resumes or reports
those orders and never places twice; the same id with other parameters is refused.

REAL mode takes two calls: the first plans, records nothing but a token (kestrel.manual.
tokens) and returns the preview; the second, with the token, re-plans and acts only if the
token is valid for exactly this action, the legs are the ones previewed and the price has not
moved more than `max_price_move` since.

Rooms: `_plan` (the legs and their risk verdicts), `_record` (the idempotent request record
and acting on legs), `_moves` (moving stops), `_confirm` (REAL's second call), `_submit` (the
entry point), `_cancel`; `reset` archives and restarts the paper account. Never imports
prefect; flows/manual.py and the CLI (cli/manual.py) wrap it.
"""

from kestrel.manual._cancel import cancel_order, find_live_order
from kestrel.manual._confirm import confirm_token
from kestrel.manual._plan import new_request_id, parse_request, plan
from kestrel.manual._submit import submit
from kestrel.manual.reset import list_archives, reset_paper_account
from kestrel.models.manual import (
    CancelOutcome,
    CloseAllRequest,
    ClosePositionRequest,
    LegPreview,
    ManualOutcome,
    MoveLevelsRequest,
    OutcomeStatus,
    PlaceOrderRequest,
    ResetOutcome,
)

__all__ = [
    "CancelOutcome",
    "CloseAllRequest",
    "ClosePositionRequest",
    "LegPreview",
    "ManualOutcome",
    "MoveLevelsRequest",
    "OutcomeStatus",
    "PlaceOrderRequest",
    "ResetOutcome",
    "cancel_order",
    "confirm_token",
    "find_live_order",
    "list_archives",
    "new_request_id",
    "parse_request",
    "plan",
    "reset_paper_account",
    "submit",
]
