"""Prefect flows. Importing this package first sets Kestrel's Prefect environment defaults."""

from kestrel.config.prefect_env import configure_prefect_env

configure_prefect_env()
