"""The books: the ledger (a position is a fold of its fills, fees per currency) and the
wallet view of balances.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["ledger", "wallet"]
