"""Manual trading and account control: orders, cancels and closes by hand through the same
order path as the automated cycle, REAL-mode confirmation tokens, and the DEMO paper reset.

Never imports prefect; flows/manual.py and the CLI (cli/manual.py) wrap it.
"""

from kestrel.manual.models import (
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
from kestrel.manual.reset import list_archives, reset_paper_account
from kestrel.manual.trading import (
    cancel_order,
    confirm_token,
    find_live_order,
    new_request_id,
    parse_request,
    plan,
    submit,
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
