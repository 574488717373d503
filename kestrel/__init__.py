"""Kestrel's domain: everything that trades, and nothing that schedules. Never imports Prefect;
docs/architecture.md draws its layers.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = [
    "analysis",
    "books",
    "config",
    "errors",
    "exchange",
    "execution",
    "ids",
    "manual",
    "market",
    "mode",
    "models",
    "money",
    "notify",
    "operator",
    "reporting",
    "risk",
    "runtime",
    "store",
    "strategy",
    "trading",
]
