"""Order execution and its truth afterwards: placing orders (intent first, deterministic client
order ids, under the symbol's lease), order sync, protective stops, the position monitor,
trailing stops and the per-symbol lease.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["lease", "monitor", "orders", "protection", "sync", "trailing"]
