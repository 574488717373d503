"""Prefect tasks: thin wrappers over kestrel's domain functions, adding retries and logging."""

from kestrel.config.prefect_env import configure_prefect_env

configure_prefect_env()
