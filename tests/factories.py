"""Envelopes for tests, built from the golden samples with overrides, signed like a producer."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tasks.intake.ingest import IngestPolicy
from tasks.messages.signing import sign

SAMPLES = Path(__file__).parent / "samples"
KEY_ID, SECRET = "test-key", b"test-secret-never-logged"
KEYS = {KEY_ID: SECRET}
SIGNING_KEYS_SETTING = f"{KEY_ID}:{SECRET.decode()}"


@cache
def _sample(type_: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / type_ / "v1.json").read_text())
    return loaded


def data(type_: str, **overrides: Any) -> dict[str, Any]:
    """The sample's data with `overrides` applied."""
    return {**copy.deepcopy(_sample(type_)["data"]), **overrides}


def envelope(
    type_: str,
    *,
    signed: bool = True,
    envelope_id: str | None = None,
    occurred_at: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A fresh envelope of `type_` whose data is the sample's with `fields` overridden."""
    raw = copy.deepcopy(_sample(type_))
    raw["id"] = envelope_id or str(uuid.uuid4())
    if occurred_at is not None:
        raw["occurred_at"] = occurred_at
    raw["data"] = data(type_, **fields)
    return sign(raw, KEY_ID, SECRET) if signed else raw


def body(raw: dict[str, Any]) -> bytes:
    """The bytes a producer would XADD."""
    return json.dumps(raw, separators=(",", ":")).encode()


def order(number: str, **fields: Any) -> dict[str, Any]:
    """An order.placed envelope for the sample manufacturer; a card order gets a PaymentIntent
    of its own unless one is given (one PaymentIntent belongs to one order family)."""
    if fields.get("payment_method", "stripe_card") == "stripe_card":
        fields.setdefault("stripe_payment_intent_id", intent_for(number))
    return envelope("order.placed", number=number, **fields)


def intent_for(number: str) -> str:
    """The PaymentIntent id `order` gives the card order `number` by default."""
    return "pi_" + "".join(c if c.isalnum() else "_" for c in number)


def manufacturer(**fields: Any) -> dict[str, Any]:
    """The sample manufacturer.upserted envelope."""
    return envelope("manufacturer.upserted", **fields)


def policy(
    *, accept_unsigned: bool = False, park_for: timedelta = timedelta(hours=1)
) -> IngestPolicy:
    """The ingress policy tests use."""
    return IngestPolicy(
        max_bytes=256 * 1024, keys=KEYS, accept_unsigned=accept_unsigned, park_for=park_for
    )


def resign(raw: dict[str, Any]) -> dict[str, Any]:
    """The envelope signed again after a test changed it."""
    return sign({k: v for k, v in raw.items() if k != "signature"}, KEY_ID, SECRET)
