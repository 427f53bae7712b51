"""The cancel and refund jobs: release a hold (or refund what was captured meanwhile), and
refund a whole order, each under its own key and recorded once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.db.uow import UowFactory
from models.domain.errors import UnclearOutcome
from models.domain.payments import IntentVerdict, capture_verdict
from tasks import payment_outcomes as outcomes
from workers.payments import Gateway, claim, guarded, settle


def cancel(
    new_uow: UowFactory, gateway: Gateway, payload: dict[str, Any], stale: timedelta
) -> None:
    """Cancel the PaymentIntent if it still holds money; refund instead if it was captured."""
    job = claim(new_uow, int(payload["operation_id"]), stale)
    if job is None:
        return
    op_id = job.claim.operation_id

    def call() -> None:
        stripe = gateway()
        state = stripe.retrieve(job.intent_id)
        if capture_verdict(state.status) is IntentVerdict.CAPTURE:
            state = stripe.cancel(job.intent_id, job.claim.key)
        verdict = capture_verdict(state.status)
        if verdict is IntentVerdict.RELEASED:
            lapsed = state.cancellation_reason == "automatic"
            settle(new_uow, lambda uow: outcomes.record_release(uow, op_id, lapsed=lapsed))
        elif verdict is IntentVerdict.CAPTURED:
            reference = state.latest_charge or state.id
            settle(new_uow, lambda uow: outcomes.cancel_found_captured(
                uow, op_id, amount=state.amount_received, reference=reference))  # fmt: skip
        else:
            raise UnclearOutcome("intent_not_settled", f"PaymentIntent status {state.status}")

    guarded(new_uow, op_id, call)


def refund(
    new_uow: UowFactory, gateway: Gateway, payload: dict[str, Any], stale: timedelta
) -> None:
    """Refund the order's amount under its key; a retry with the key is replayed by Stripe."""
    job = claim(new_uow, int(payload["operation_id"]), stale)
    if job is None:
        return
    op_id = job.claim.operation_id
    amount = job.claim.amount

    def call() -> None:
        result = gateway().refund(job.intent_id, amount, job.claim.key)
        settle(new_uow, lambda uow: outcomes.record_refund(
            uow, op_id, amount=result.amount, reference=result.id))  # fmt: skip

    guarded(new_uow, op_id, call)
