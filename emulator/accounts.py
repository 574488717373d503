"""Spot wallets: free and locked balances per asset, moved only in exact Decimal amounts.

Open orders lock what they may spend (quote for buys, base for sells), as Binance does, so
`free + locked` always equals what the account owns and tests can reconcile balances with
fills to the last satoshi.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from emulator.config import AccountConfig
from emulator.errors import insufficient_balance

ZERO = Decimal("0")


class Account:
    """One API key's spot wallet and fee rates. Callers hold the engine lock."""

    def __init__(self, config: AccountConfig, uid: int) -> None:
        self.api_key = config.api_key
        self.secret = config.secret
        self.maker_fee = config.maker_fee
        self.taker_fee = config.taker_fee
        self.uid = uid
        self.free: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
        self.locked: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
        for asset, amount in config.balances.items():
            self.free[asset] = amount
        self.update_time = 0

    def require_free(self, asset: str, amount: Decimal) -> None:
        if amount > self.free[asset]:
            raise insufficient_balance()

    def lock(self, asset: str, amount: Decimal) -> None:
        """Reserve funds for an open order; -2010 if they are not there."""
        self.require_free(asset, amount)
        self.free[asset] -= amount
        self.locked[asset] += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        if amount > self.locked[asset]:
            raise AssertionError(f"unlocking {amount} {asset} but only {self.locked[asset]} locked")
        self.locked[asset] -= amount
        self.free[asset] += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        if amount > self.locked[asset]:
            raise AssertionError(f"spending {amount} {asset} but only {self.locked[asset]} locked")
        self.locked[asset] -= amount

    def spend_free(self, asset: str, amount: Decimal) -> None:
        self.require_free(asset, amount)
        self.free[asset] -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] += amount

    def assets(self) -> list[str]:
        return sorted(set(self.free) | set(self.locked))

    def total(self, asset: str) -> Decimal:
        return self.free[asset] + self.locked[asset]
