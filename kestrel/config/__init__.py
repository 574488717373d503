"""Settings models: kestrel.toml and the environment (pydantic-settings), the demo's settings,
and Prefect's environment defaults. Validation happens here, before anything runs.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["demo", "ops", "prefect_env", "settings"]
