"""Checks the `Stripe-Signature` header of a webhook (HMAC-SHA256 over `t.` + raw body), with
limits on how old and how far in the future its timestamp may be. No `stripe` import needed:
the scheme is ours too (models/domain/webhook_signature.py signs and this checks with it).
"""

from __future__ import annotations

import hmac
import re

from models.domain import webhook_signature

DEFAULT_TOLERANCE_S = 300  # Stripe's own default
DEFAULT_FUTURE_TOLERANCE_S = 60  # clock skew we forgive; the stripe library forgives any

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(Exception):
    """The header is missing, malformed, stale, from the future, or matches no v1 signature."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_signature(
    header: str | None,
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    future_tolerance_s: int = DEFAULT_FUTURE_TOLERANCE_S,
) -> int:
    """The signed timestamp when some v1 signature matches and the time is acceptable."""
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    if header is None or not header.strip():
        raise SignatureError("missing Stripe-Signature header")
    timestamp, candidates = _parse(header)
    if not candidates:
        raise SignatureError("no v1 signature in Stripe-Signature")
    expected = webhook_signature.signature(secret.encode(), timestamp, body).encode()
    matched = False
    for candidate in candidates:  # no early exit: every candidate costs the same
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match")
    if now - timestamp > tolerance_s:
        raise SignatureError("timestamp too old")
    if timestamp - now > future_tolerance_s:
        raise SignatureError("timestamp too far in the future")
    return timestamp


def _parse(header: str) -> tuple[int, list[bytes]]:
    """(t, the v1 digests that look like digests); other schemes (v0) are ignored."""
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            raise SignatureError("malformed Stripe-Signature header")
        if name == "t":
            timestamps.append(value)
        elif name == "v1" and _HEX_DIGEST.fullmatch(value):
            candidates.append(value.lower().encode("ascii"))
        elif name == "v1":
            candidates.append(b"")  # present but not a digest: it can never match
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed Stripe-Signature header")
    return int(timestamps[0]), candidates


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send for `body` at `timestamp` (for tests and local tools)."""
    return webhook_signature.signature_header(secret.encode(), timestamp, body)
