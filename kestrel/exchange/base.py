"""The exchange surface Kestrel uses: a subset of ccxt's unified sync API, same names and shapes.

A real `ccxt.binance(...)` instance satisfies it as is; so does `PaperExchange`. Everything
above this layer speaks ccxt's vocabulary and never knows which one it talks to.
Amounts and prices come back as floats (as ccxt returns them); convert with
`kestrel.money.to_decimal` at the boundary.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

OHLCVRow = list[float]
CcxtDict = dict[str, Any]


@runtime_checkable
class ExchangeClient(Protocol):
    id: str

    def load_markets(self, reload: bool = False) -> dict[str, CcxtDict]: ...

    def market(self, symbol: str) -> CcxtDict: ...

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[OHLCVRow]: ...

    def fetch_ticker(self, symbol: str, params: CcxtDict | None = None) -> CcxtDict: ...

    def fetch_balance(self, params: CcxtDict | None = None) -> CcxtDict: ...

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: CcxtDict | None = None,
    ) -> CcxtDict: ...

    def fetch_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict: ...

    def cancel_order(
        self, id: str, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict: ...

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]: ...

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]: ...

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]: ...
