"""Test doubles of external services that demos can run too (never fakes of Kestrel itself)."""
