"""The operations of the local Stripe fake (create, confirm, capture, cancel, refund, read),
following Stripe's state rules; every state change is also written to the effect log."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

from tests.fakes.stripe_model import (
    CANCELABLE,
    DECLINE_AT_CAPTURE,
    DECLINE_AT_CONFIRM,
    DEFAULT_PAYMENT_METHOD,
    HOLD_SECONDS,
    Effect,
    EffectLog,
    FakeClock,
    Json,
    StripeFakeError,
    bad_param,
    int_param,
    missing,
    new_charge,
    new_id,
    new_intent,
    str_param,
)


def _unexpected_state(pi: Json, action: str, allowed: Sequence[str]) -> StripeFakeError:
    message = (
        f"This PaymentIntent could not be {action} because it has a status of "
        f"{pi['status']}. Only a PaymentIntent with one of the following statuses may "
        f"be {action}: {', '.join(allowed)}."
    )
    return StripeFakeError(
        400,
        "invalid_request_error",
        message,
        code="payment_intent_unexpected_state",
        extra={"payment_intent": copy.deepcopy(pi)},
    )


def _expand(params: Json) -> list[str]:
    expand = params.get("expand") or []
    return [str(e) for e in expand] if isinstance(expand, list) else [str(expand)]


def _card_declined(pi: Json, charge: Json) -> StripeFakeError:
    error: Json = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "charge": charge["id"],
    }
    pi["last_payment_error"] = dict(error)
    pi["status"] = "requires_payment_method"
    pi["amount_capturable"] = 0
    charge.update(status="failed", paid=False, failure_code="card_declined")
    return StripeFakeError(
        402,
        "card_error",
        "Your card was declined.",
        code="card_declined",
        extra={
            "decline_code": "generic_decline",
            "charge": charge["id"],
            "payment_intent": copy.deepcopy(pi),
        },
    )


class Ledger:
    """All PaymentIntents, charges and refunds, behind one lock."""

    def __init__(self, clock: FakeClock, effects: EffectLog) -> None:
        self.clock = clock
        self.effects = effects
        self._lock = threading.RLock()
        self._intents: dict[str, Json] = {}
        self._charges: dict[str, Json] = {}
        self._refunds: dict[str, Json] = {}

    # --- reads -------------------------------------------------------------------------
    def render(self, pi: Json, expand: Sequence[str] = ()) -> Json:
        out = copy.deepcopy(pi)
        if "latest_charge" in expand and pi["latest_charge"] is not None:
            out["latest_charge"] = copy.deepcopy(self._charges[pi["latest_charge"]])
        return out

    def intent(self, pi_id: str) -> Json:
        """The live PaymentIntent, after letting an expired hold lapse (as Stripe would have)."""
        with self._lock:
            pi = self._intents.get(pi_id)
            if pi is None:
                raise missing("payment_intent", pi_id, "intent")
            self._expire_if_due(pi)
            return pi

    def retrieve_intent(self, pi_id: str, params: Json) -> Json:
        with self._lock:
            return self.render(self.intent(pi_id), _expand(params))

    def charge(self, charge_id: str) -> Json:
        with self._lock:
            charge = self._charges.get(charge_id)
            if charge is None:
                raise missing("charge", charge_id, "charge")
            self.intent(charge["payment_intent"])
            return copy.deepcopy(charge)

    def refund(self, refund_id: str) -> Json:
        with self._lock:
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise missing("refund", refund_id, "refund")
            return copy.deepcopy(refund)

    def refunds_of(self, pi_id: str | None) -> list[Json]:
        with self._lock:
            found = [r for r in self._refunds.values() if pi_id in (None, r["payment_intent"])]
            return copy.deepcopy(sorted(found, key=lambda r: -r["created"]))

    def _expire_if_due(self, pi: Json) -> None:
        if pi["status"] != "requires_capture":
            return
        charge = self._charges[pi["latest_charge"]]
        capture_before = charge["payment_method_details"]["card"]["capture_before"]
        if self.clock.now() >= capture_before:
            # The authorization lapsed: Stripe cancels the intent and refunds the charge.
            pi.update(
                status="canceled",
                cancellation_reason="automatic",
                canceled_at=capture_before,
                amount_capturable=0,
            )
            charge.update(refunded=True, amount_refunded=charge["amount"])

    # --- state changes ------------------------------------------------------------------
    def create_intent(self, params: Json, key: str | None) -> Json:
        with self._lock:
            pi = new_intent(params, self.clock.now())
            self._intents[pi["id"]] = pi
            self.effects.add(Effect("create", pi["id"], pi["amount"], key))
            if str(params.get("confirm", "false")).lower() == "true":
                self._authorize(pi, params, key)
            return self.render(pi, _expand(params))

    def confirm_intent(self, pi_id: str, params: Json, key: str | None) -> Json:
        with self._lock:
            pi = self.intent(pi_id)
            allowed = ("requires_payment_method", "requires_confirmation")
            if pi["status"] not in allowed:
                raise _unexpected_state(pi, "confirmed", allowed)
            self._authorize(pi, params, key)
            return self.render(pi, _expand(params))

    def _authorize(
        self, pi: Json, params: Json, key: str | None, capture_before: int | None = None
    ) -> None:
        payment_method = str_param(params, "payment_method", required=False)
        payment_method = payment_method or pi["payment_method"]
        if payment_method is None:
            raise StripeFakeError(
                400,
                "invalid_request_error",
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                extra={"payment_intent": copy.deepcopy(pi)},
            )
        now = self.clock.now()
        charge = new_charge(pi, payment_method, now, capture_before or now + HOLD_SECONDS)
        self._charges[charge["id"]] = charge
        pi.update(
            payment_method=payment_method, latest_charge=charge["id"], last_payment_error=None
        )
        if payment_method == DECLINE_AT_CONFIRM:
            raise _card_declined(pi, charge)
        if pi["capture_method"] == "manual":
            pi.update(status="requires_capture", amount_capturable=pi["amount"])
        else:
            self._settle(pi, charge, pi["amount"], key)

    def _settle(self, pi: Json, charge: Json, amount: int, key: str | None) -> None:
        pi.update(status="succeeded", amount_capturable=0, amount_received=amount)
        charge.update(captured=True, amount_captured=amount)
        self.effects.add(Effect("capture", pi["id"], amount, key))

    def capture_intent(self, pi_id: str, params: Json, key: str | None) -> Json:
        with self._lock:
            pi = self.intent(pi_id)
            if pi["status"] != "requires_capture":
                raise _unexpected_state(pi, "captured", ("requires_capture",))
            amount = int_param(params, "amount_to_capture", required=False)
            amount = pi["amount_capturable"] if amount is None else amount
            if amount > pi["amount_capturable"]:
                raise bad_param(
                    "amount_to_capture must be less than or equal to the "
                    "PaymentIntent's amount_capturable.",
                    "amount_to_capture",
                    "amount_too_large",
                )
            charge = self._charges[pi["latest_charge"]]
            if charge["payment_method"] == DECLINE_AT_CAPTURE:
                raise _card_declined(pi, charge)
            self._settle(pi, charge, amount, key)
            return self.render(pi, _expand(params))

    def cancel_intent(self, pi_id: str, params: Json, key: str | None) -> Json:
        with self._lock:
            pi = self.intent(pi_id)
            if pi["status"] not in CANCELABLE:
                raise _unexpected_state(pi, "canceled", (*CANCELABLE, "processing"))
            released = pi["amount_capturable"]
            if pi["latest_charge"] is not None and pi["status"] == "requires_capture":
                self._charges[pi["latest_charge"]].update(refunded=True, amount_refunded=released)
            pi.update(
                status="canceled",
                amount_capturable=0,
                canceled_at=self.clock.now(),
                cancellation_reason=params.get("cancellation_reason"),
            )
            self.effects.add(Effect("cancel", pi["id"], released, key))
            return self.render(pi, _expand(params))

    def create_refund(self, params: Json, key: str | None) -> Json:
        with self._lock:
            pi_id = str_param(params, "payment_intent", required=False)
            charge_id = str_param(params, "charge", required=False)
            if pi_id is None and charge_id is not None:
                pi_id = self.charge(charge_id)["payment_intent"]
            if pi_id is None:
                raise bad_param(
                    "One of the following params should be provided for this "
                    "request: payment_intent or charge.",
                    "payment_intent",
                    "parameter_missing",
                )
            pi = self.intent(pi_id)
            if pi["status"] != "succeeded":
                raise _unexpected_state(pi, "refunded", ("succeeded",))
            charge = self._charges[pi["latest_charge"]]
            return self._refund_charge(pi, charge, params, key)

    def _refund_charge(self, pi: Json, charge: Json, params: Json, key: str | None) -> Json:
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = int_param(params, "amount", required=False)
        amount = remaining if amount is None else amount
        if remaining == 0:
            raise StripeFakeError(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount > remaining:
            raise StripeFakeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is "
                f"greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund: Json = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": pi["id"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": dict(params.get("metadata") or {}),
            "created": self.clock.now(),
        }
        self._refunds[refund["id"]] = refund
        self.effects.add(Effect("refund", pi["id"], amount, key))
        return copy.deepcopy(refund)

    # --- test helpers (no HTTP) --------------------------------------------------------
    def authorized_intent(
        self, amount: int, currency: str, capture_before: int | None, decline: bool
    ) -> str:
        """A manual-capture PaymentIntent already in `requires_capture`."""
        with self._lock:
            params: Json = {"amount": str(amount), "currency": currency, "capture_method": "manual"}
            pi = self._intents[self.create_intent(params, None)["id"]]
            method = DECLINE_AT_CAPTURE if decline else DEFAULT_PAYMENT_METHOD
            self._authorize(pi, {"payment_method": method}, None, capture_before)
            return str(pi["id"])

    def set_capture_before(self, pi_id: str, capture_before: int) -> None:
        with self._lock:
            pi = self._intents[pi_id]
            if pi["latest_charge"] is None:
                raise ValueError(f"{pi_id} has no charge yet")
            card = self._charges[pi["latest_charge"]]["payment_method_details"]["card"]
            card["capture_before"] = capture_before

    def decline_captures(self, pi_id: str) -> None:
        """From now on, capturing this intent is declined (402 card_declined)."""
        with self._lock:
            pi = self._intents[pi_id]
            if pi["latest_charge"] is None:
                raise ValueError(f"{pi_id} has no charge yet")
            self._charges[pi["latest_charge"]]["payment_method"] = DECLINE_AT_CAPTURE
