"""Storage: one repository interface (`Store`), SQLite and MongoDB backends, routed by mode."""

from kestrel.store.base import Store

__all__ = ["Store"]
