"""What an operator changes while Kestrel runs: the live-settings overlay, the settings a run
starts with (REAL guardrails: risk-raising changes need a second confirmation), and the
one-time confirmation tokens that REAL actions and risk-raising changes use.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["live", "risk_changes", "run", "tokens"]
