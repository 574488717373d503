"""Prefect flows. Importing this package first sets Kestrel's Prefect environment defaults."""

from kestrel.prefect_env import configure_prefect_env

configure_prefect_env()
