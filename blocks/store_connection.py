"""Where Kestrel keeps its books, as a Prefect block. The URI is a secret: a MongoDB URI
usually carries a password.

Flows pass it to the domain code through the process environment (KESTREL_STORE_URI), never
as a flow parameter. Without a block: KESTREL_STORE_URI / store_uri in kestrel.toml.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from blocks.secret_env import STORE_URI_ENV

_SCHEMES = ("mongodb://", "mongodb+srv://", "sqlite:///")


class StoreConnection(Block):
    """Kestrel's store: SQLite files under a folder, or a MongoDB (replica set) URI."""

    _block_type_name: ClassVar[str] = "Kestrel Store Connection"
    _block_type_slug: ClassVar[str] = "kestrel-store-connection"
    _description: ClassVar[str] = (
        "Kestrel's store: mongodb://user:pass@host/db?replicaSet=rs0 or sqlite:///folder."
    )

    uri: SecretStr | None = Field(
        default=None,
        description="mongodb://..., mongodb+srv://... or sqlite:///<folder>; "
        "empty: SQLite files under data_dir",
    )
    data_dir: str | None = Field(
        default=None, description="Kestrel's data folder (SQLite files, Prefect home)"
    )

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(_SCHEMES):
            raise ValueError("must start with mongodb://, mongodb+srv:// or sqlite:///")
        return value

    def settings_overrides(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir} if self.data_dir else {}

    def secret_env(self) -> dict[str, str]:
        return {STORE_URI_ENV: self.uri.get_secret_value()} if self.uri is not None else {}
