"""Strategy profiles and the `[trading]` settings section.

Deliberately empty of imports: kestrel.config.settings imports kestrel.strategy.settings, and
kestrel.strategy.resolve imports kestrel.config.settings; importing either from here would be a
cycle.
"""
