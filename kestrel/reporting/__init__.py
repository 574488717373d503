"""Reporting: the dashboards published as Prefect artifacts and the reconciliation summary
(books against the wallet, per currency) that the demo and backtests end with.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["dashboards", "summary"]
