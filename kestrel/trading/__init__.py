"""The trading cycle's steps: fetch -> analyze -> risk -> decide -> execute, its stages over all
symbols (batch; composed by flows/trading_cycle.py), the decision itself, and the start of a
cycle.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["batch", "cycle", "decision", "start"]
