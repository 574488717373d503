"""Kept for imports written against the old location; the defaults live in kestrel.prefect_env
(which imports nothing from Prefect, so the CLI can apply them before Prefect loads)."""

from kestrel.prefect_env import configure_prefect_env

__all__ = ["configure_prefect_env"]
