"""Common pydantic configuration for Kestrel's boundary models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

# Decimals travel as strings in JSON so no store or transport turns them into floats.
Money = Annotated[Decimal, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class KestrelModel(BaseModel):
    """Strict-ish base: unknown fields are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
