"""Prefect flows. Importing this package first sets Kestrel's Prefect environment defaults."""

from flows._env import configure_prefect_env

configure_prefect_env()
