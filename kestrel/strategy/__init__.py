"""Strategy profiles and the `[trading]` settings section.

Deliberately empty of imports: kestrel.config.settings imports kestrel.strategy.settings, and
kestrel.strategy.resolve imports kestrel.config.settings; importing either from here would be a
cycle.
"""

# The package's public modules; import from them directly (the package imports nothing).
__all__ = ["profiles", "resolve", "settings"]
