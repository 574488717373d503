"""Binance's SIGNED-endpoint check: API key header, timestamp/recvWindow, HMAC-SHA256 signature.

The signature is verified over the raw bytes the client sent (query string, then body, without
the `signature` parameter), exactly as Binance does, so a client that re-orders or re-encodes
parameters differently from what it signed fails here just as it would in production.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from emulator.errors import (
    ahead_of_server,
    bad_api_key_format,
    illegal_number,
    invalid_api_key,
    invalid_signature,
    mandatory,
    outside_recv_window,
    recv_window_too_large,
)

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000


def sign(payload: str, secret: str) -> str:
    """Hex HMAC-SHA256, what ccxt puts in `signature=`."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(raw: str) -> tuple[str, str | None]:
    """Remove `signature=...` from a raw urlencoded string; returns (rest, signature)."""
    if not raw:
        return "", None
    kept, signature = [], None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_signed(
    secrets: Mapping[str, str],
    api_key: str | None,
    params: Mapping[str, str],
    raw_query: str,
    raw_body: str,
    server_time_ms: int,
    check_timestamp: bool = True,
) -> str:
    """Validate a SIGNED request and return its API key, or raise Binance's error."""
    if not api_key:
        raise bad_api_key_format()
    secret = secrets.get(api_key)
    if secret is None:
        raise invalid_api_key()
    timestamp = _int_param(params, "timestamp", required=True)
    recv_window = _int_param(params, "recvWindow", required=False) or DEFAULT_RECV_WINDOW_MS
    if recv_window > MAX_RECV_WINDOW_MS:
        raise recv_window_too_large()
    if check_timestamp:
        assert timestamp is not None
        if timestamp >= server_time_ms + 1000:
            raise ahead_of_server()
        if server_time_ms - timestamp > recv_window:
            raise outside_recv_window()
    query, sig_q = split_signature(raw_query)
    body, sig_b = split_signature(raw_body)
    signature = sig_q or sig_b
    if not signature:
        raise mandatory("signature")
    expected = sign(query + body, secret)
    if not hmac.compare_digest(expected, signature.lower()):
        raise invalid_signature()
    return api_key


def _int_param(params: Mapping[str, str], name: str, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise mandatory(name)
        return None
    try:
        # recvWindow may carry up to three decimals (microseconds); whole ms are enough here.
        return int(float(raw))
    except ValueError:
        raise illegal_number(name) from None
