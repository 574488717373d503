"""Typed flow parameters, so that Prefect rejects a wrong type when a run is created
(`prefect deployment run`, the UI's custom run, an automation) instead of the run failing
later, inside the worker, on settings validation.

A `config` parameter stays a partial mapping (it is layered over the environment,
kestrel.toml and blocks, so a value it leaves out must not become a default), but its JSON
schema, which Prefect enforces for deployments (`enforce_parameter_schema`), is that of the
settings model: every key optional, unknown keys and wrong types refused. What the schema
cannot say (a timeframe the exchange lacks, a REAL mode the installation does not allow) is
checked when the run resolves its settings, and ends it Cancelled with the field named.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from kestrel.config.settings import KestrelSettings
from kestrel.notify.settings import TelegramSettings

__all__ = ["SchemaOf", "SettingsOverrides", "TelegramOverrides"]


class SchemaOf:
    """Annotated metadata: validate as the annotated type (a plain dict), publish the JSON
    schema of `model`, whose fields all have defaults, so any subset of it validates."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(self.model.__pydantic_core_schema__)
        return handler.resolve_ref_schema(schema) if "$ref" not in schema else schema


SettingsOverrides = Annotated[dict[str, Any], SchemaOf(KestrelSettings)]
"""Any settings (env / kestrel.toml layout); may not widen the mode or the REAL whitelist."""

TelegramOverrides = Annotated[dict[str, Any], SchemaOf(TelegramSettings)]
"""The `telegram` section (chat, filters, quiet hours); never the token."""
