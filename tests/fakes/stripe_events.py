"""Stripe webhook events as Stripe sends them (full object, floats and all), signed the way
Stripe signs them, for the webhook endpoint's tests."""

from __future__ import annotations

import json
import time
from typing import Any

from workers.http.stripe_signature import signature_header

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
SIGNING_KEY = ("webhook-test", b"envelope-signing-secret")


def event(
    type_: str = "payment_intent.amount_capturable_updated",
    event_id: str = "evt_3PTest0000000001",
    object_id: str = "pi_3PTest0000000001",
    created: int = 1_772_442_900,
) -> dict[str, Any]:
    """An event whose object carries more than we keep (a float among it)."""
    kind = "charge" if type_.startswith("charge.") else "payment_intent"
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": "order:M1:capture"},
        "type": type_,
        "data": {
            "object": {
                "id": object_id,
                "object": kind,
                "amount": 25800,
                "amount_capturable": 25800,
                "currency": "eur",
                "status": "requires_capture",
                "metadata": {"order_number": "M9681118"},
                "risk_score": 12.5,  # a float we must never forward
            },
            "previous_attributes": None,
        },
    }


def body(value: dict[str, Any]) -> bytes:
    """The raw bytes Stripe would post."""
    return json.dumps(value, indent=2).encode()


def headers(raw: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    """Content type and a Stripe-Signature over `raw` at `at` (default: now)."""
    timestamp = int(time.time()) if at is None else at
    return {
        "Content-Type": "application/json",
        "Stripe-Signature": signature_header(raw, secret, timestamp),
    }
