"""Binance's error replies as exceptions, so handlers can `raise` and the server renders them.

Codes, messages and HTTP statuses are Binance's own (spot REST API, errors.md) because ccxt maps
them to its exception classes by exact code or exact message: changing a message changes which
ccxt exception the client raises (e.g. the -2010 balance message is what makes InsufficientFunds).
"""

from __future__ import annotations

from typing import Any


class BinanceError(Exception):
    """An error reply: HTTP status plus Binance's `{"code": ..., "msg": ...}` body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def insufficient_balance() -> BinanceError:
    # ccxt matches this exact message to InsufficientFunds (the code alone is InvalidOrder).
    return BinanceError(-2010, "Account has insufficient balance for requested action.")


def duplicate_order() -> BinanceError:
    return BinanceError(-2010, "Duplicate order sent.")


def would_match_and_take() -> BinanceError:
    return BinanceError(-2010, "Order would immediately match and take.")


def stop_would_trigger() -> BinanceError:
    return BinanceError(-2010, "Stop price would trigger immediately.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def unknown_order() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def filter_failure(name: str) -> BinanceError:
    # ccxt turns bodies containing LOT_SIZE / PRICE_FILTER into InvalidOrder before the code map.
    return BinanceError(-1013, f"Filter failure: {name}")


def market_closed() -> BinanceError:
    return BinanceError(-1013, "Market is closed.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal_number(name: str) -> BinanceError:
    return BinanceError(
        -1100,
        f"Illegal characters found in parameter '{name}'; "
        "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    )


def bad_api_key_format() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", status=401)


def invalid_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def ahead_of_server() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def recv_window_too_large() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def too_much_weight() -> BinanceError:
    return BinanceError(
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        status=429,
    )


def not_emulated(what: str) -> BinanceError:
    """Loud failure for anything outside the emulated surface (ccxt raises BadRequest)."""
    return BinanceError(-1020, f"This operation is not supported. (emulator: {what})", status=404)
