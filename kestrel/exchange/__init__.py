"""Exchanges: the ccxt-shaped client surface, the paper exchange, and adapters to our models."""
