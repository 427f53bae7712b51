"""State of the local Stripe fake: PaymentIntents, their charges and refunds, a settable clock
and the log of effects. No HTTP here; `stripe_server` puts this on the wire."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from typing import Any, NamedTuple

Json = dict[str, Any]

HOLD_SECONDS = 7 * 24 * 3600
DEFAULT_PAYMENT_METHOD = "pm_card_visa"
# Stripe's own test method: the card is declined when the PaymentIntent is confirmed.
DECLINE_AT_CONFIRM = "pm_card_chargeDeclined"
# Fake-only: authorizes fine, then the capture is declined (402 card_declined).
DECLINE_AT_CAPTURE = "pm_card_chargeDeclinedOnCapture"
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
)


class FakeClock:
    """Unix time that only moves when a test says so (after starting at the real time)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(time.time() if start is None else start)
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return int(self._now)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class StripeFakeError(Exception):
    """An API error as Stripe sends it; `stored` is False for errors raised before the
    endpoint starts executing (validation), which Stripe does not keep under the key."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
        extra: Json | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.stored = stored
        self.error: Json = {"type": type_, "message": message, **(extra or {})}
        if code is not None:
            self.error["code"] = code
        if param is not None:
            self.error["param"] = param

    def body(self) -> Json:
        return {"error": self.error}


class Effect(NamedTuple):
    """One state change the fake performed (not one request)."""

    kind: str  # create | capture | cancel | refund
    pi_id: str
    amount: int
    idempotency_key: str | None


class EffectLog:
    """Thread-safe append-only log of effects."""

    def __init__(self) -> None:
        self._items: list[Effect] = []
        self._lock = threading.Lock()

    def add(self, effect: Effect) -> None:
        with self._lock:
            self._items.append(effect)

    def snapshot(self) -> list[Effect]:
        with self._lock:
            return list(self._items)

    def counts(self) -> dict[str, int]:
        return dict(Counter(e.kind for e in self.snapshot()))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def bad_param(message: str, param: str, code: str = "parameter_invalid") -> StripeFakeError:
    return StripeFakeError(
        400, "invalid_request_error", message, code=code, param=param, stored=False
    )


def missing(kind: str, obj_id: str, param: str = "id") -> StripeFakeError:
    return StripeFakeError(
        404,
        "invalid_request_error",
        f"No such {kind}: '{obj_id}'",
        code="resource_missing",
        param=param,
        stored=False,
    )


def int_param(params: Json, name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise bad_param(f"Missing required param: {name}.", name, "parameter_missing")
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_param(f"Invalid integer: {raw}", name, "parameter_invalid_integer") from None
    if value <= 0:
        raise bad_param(f"This value must be greater than or equal to 1: {name}", name)
    return value


def str_param(params: Json, name: str, *, required: bool) -> str | None:
    raw = params.get(name)
    if raw is None and required:
        raise bad_param(f"Missing required param: {name}.", name, "parameter_missing")
    if raw is not None and not isinstance(raw, str):
        raise bad_param(f"Invalid string: {name}", name)
    return raw


def new_charge(pi: Json, payment_method: str, created: int, capture_before: int) -> Json:
    return {
        "id": new_id("ch"),
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "captured": False,
        "refunded": False,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "payment_intent": pi["id"],
        "status": "succeeded",
        "paid": True,
        "created": created,
        "livemode": False,
        "failure_code": None,
        "payment_method": payment_method,
        "metadata": dict(pi["metadata"]),
        "payment_method_details": {
            "type": "card",
            "card": {"brand": "visa", "last4": "4242", "capture_before": capture_before},
        },
    }


def new_intent(params: Json, created: int) -> Json:
    amount = int_param(params, "amount", required=True)
    currency = str_param(params, "currency", required=True)
    capture_method = params.get("capture_method", "automatic_async")
    if capture_method not in ("manual", "automatic", "automatic_async"):
        raise bad_param(f"Invalid capture_method: {capture_method}", "capture_method")
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_param("Invalid metadata: must be a hash", "metadata")
    payment_method = str_param(params, "payment_method", required=False)
    return {
        "id": new_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": str(currency).lower(),
        "capture_method": capture_method,
        "customer": params.get("customer"),
        "description": params.get("description"),
        "metadata": dict(metadata),
        "payment_method": payment_method,
        "latest_charge": None,
        "last_payment_error": None,
        "cancellation_reason": None,
        "canceled_at": None,
        "created": created,
        "livemode": False,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
    }
