"""Strategy profiles and the `[trading]` settings section.

Deliberately empty of imports: kestrel.settings imports kestrel.strategy.settings, and
kestrel.strategy.resolve imports kestrel.settings; importing either from here would be a cycle.
"""
