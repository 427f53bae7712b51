"""The cancel and refund jobs: release a hold (or refund what was captured meanwhile), and
refund a whole order, each under its own key and recorded once."""

from __future__ import annotations

from models.domain.errors import UnclearOutcome
from models.domain.payments import CANCELABLE, IntentVerdict, capture_verdict
from tasks.payments import recording as outcomes
from tasks.payments.running import Claimed, Gateway, Record


def cancel_one(gateway: Gateway, job: Claimed, records: list[Record]) -> None:
    """Cancel the PaymentIntent if it still holds money; refund instead if it was captured."""
    op_id = job.claim.operation_id
    stripe = gateway()
    state = stripe.retrieve(job.intent_id)
    if state.status in CANCELABLE:
        state = stripe.cancel(job.intent_id, job.claim.key)
    verdict = capture_verdict(state.status)
    if verdict is IntentVerdict.RELEASED:
        lapsed = state.cancellation_reason == "automatic"
        records.append(lambda uow: outcomes.record_release(uow, op_id, lapsed=lapsed))
    elif verdict is IntentVerdict.CAPTURED:
        reference = state.latest_charge or state.id
        records.append(
            lambda uow: outcomes.cancel_found_captured(
                uow, op_id, amount=state.amount_received, reference=reference
            )
        )
    else:
        raise UnclearOutcome("intent_not_settled", f"PaymentIntent status {state.status}")


def refund_one(gateway: Gateway, job: Claimed, records: list[Record]) -> None:
    """Refund the order's amount under its key; a retry with the key is replayed by Stripe."""
    op_id = job.claim.operation_id
    result = gateway().refund(job.intent_id, job.claim.amount, job.claim.key)
    records.append(
        lambda uow: outcomes.record_refund(uow, op_id, amount=result.amount, reference=result.id)
    )
