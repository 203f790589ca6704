"""The telephony platform proves who it is: every `/ivr/turn` request is signed.

The platform and PowerDesk share a secret (`POWERDESK_IVR_SECRET`; a comma-separated list while
it is rotated). Each request carries

    X-PowerDesk-Timestamp: <Unix seconds>
    X-PowerDesk-Nonce: <8-64 characters [A-Za-z0-9_-], new for every request>
    X-PowerDesk-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<nonce>." + raw request body)>

A request is refused with 401 when the headers are missing or malformed, when its timestamp is
more than `POWERDESK_IVR_REPLAY_WINDOW` seconds (default 300) from our clock, or when its nonce
was already used (a replay; a retry must be signed anew); with 403 when the signature does not
match. Only a
request that passes may name a `caller_number`, the hotline's identity for a caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random_tokens
import time
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-PowerDesk-Timestamp"
NONCE_HEADER = "X-PowerDesk-Nonce"
SIGNATURE_HEADER = "X-PowerDesk-Signature"
SCHEME = "sha256="
NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class IvrAuthError(Exception):
    """Why a request was refused; `status` is the HTTP status to answer with (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    signed = timestamp.encode() + b"." + nonce.encode() + b"." + body
    return SCHEME + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers a platform sends with `body` (for clients, the evals and the tests)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or random_tokens.token_urlsafe(16)
    return {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(secret, timestamp, nonce, body), "Content-Type": "application/json"}


def check_signature(secrets: Iterable[str], timestamp: str | None, nonce: str | None, given: str | None,
                    body: bytes, window_seconds: int, now: float | None = None) -> str:
    """The request's nonce (to be claimed once against replays) if it is signed, or IvrAuthError."""
    if not timestamp or not nonce or not given:
        raise IvrAuthError(401, f"{TIMESTAMP_HEADER} / {NONCE_HEADER} / {SIGNATURE_HEADER}: 缺少平台签名")
    if (not timestamp.isdigit() or len(timestamp) > 12 or not NONCE.match(nonce)
            or not given.startswith(SCHEME) or len(given) > 80):
        raise IvrAuthError(401, f"{SIGNATURE_HEADER}: 签名格式错误")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > window_seconds:
        raise IvrAuthError(401, f"{TIMESTAMP_HEADER}: 请求时间超出允许范围")
    matched = False
    for secret in secrets:  # every secret is tried, so the time taken says nothing about which
        matched |= hmac.compare_digest(given.encode(), signature(secret, timestamp, nonce, body).encode())
    if not matched:
        raise IvrAuthError(403, f"{SIGNATURE_HEADER}: 签名校验失败")
    return nonce
