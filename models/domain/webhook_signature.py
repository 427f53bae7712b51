"""The signature on webhooks we send to manufacturers (pure): `Orderflow-Signature: t=<unix>,
v1=<hex>`, where v1 is HMAC-SHA256 over "<t>.<body>" with the shared secret, as Stripe does it.
docs/manufacturers.md tells receivers how to check it."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "Orderflow-Timestamp"
SIGNATURE_HEADER = "Orderflow-Signature"
# Receivers should refuse older signatures, so a captured request cannot be replayed later.
DEFAULT_TOLERANCE_S = 300


def signed_payload(timestamp: int, body: bytes) -> bytes:
    """The bytes the MAC covers: the timestamp, a dot, then the raw body."""
    return f"{timestamp}.".encode() + body


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of the signed payload."""
    return hmac.new(secret, signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Orderflow-Signature` header value."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: bytes, header: str, body: bytes, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """Whether `header` signs `body` with `secret` and is at most `tolerance_s` old (or early)."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    # Several v1 values are allowed (a receiver may see one per secret during a rotation).
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))
