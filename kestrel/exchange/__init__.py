"""Exchanges: the ccxt-shaped client surface, the paper exchange, and adapters to our models."""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = [
    "adapter",
    "base",
    "ccxt_exchange",
    "errors",
    "paper",
    "paper_ccxt",
    "paper_errors",
    "paper_factory",
    "paper_markets",
    "paper_matching",
    "paper_orders",
    "paper_rules",
    "paper_state",
    "settings",
]
