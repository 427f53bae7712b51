"""The cancel and refund jobs: release a hold (or refund what was captured meanwhile), and
refund a whole order, each under its own key and recorded once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.db.uow import UowFactory
from models.domain.errors import UnclearOutcome
from models.domain.payments import IntentVerdict, capture_verdict
from tasks import payment_outcomes as outcomes
from workers.payments import Claimed, Gateway, run_claimed, settle


def cancel(
    new_uow: UowFactory, gateway: Gateway, payload: dict[str, Any], stale: timedelta
) -> None:
    """Cancel the PaymentIntent if it still holds money; refund instead if it was captured."""
    run_claimed(new_uow, payload, stale, lambda job: _cancel(new_uow, gateway, job))


def _cancel(new_uow: UowFactory, gateway: Gateway, job: Claimed) -> None:
    op_id = job.claim.operation_id
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


def refund(
    new_uow: UowFactory, gateway: Gateway, payload: dict[str, Any], stale: timedelta
) -> None:
    """Refund the order's amount under its key; a retry with the key is replayed by Stripe."""
    run_claimed(new_uow, payload, stale, lambda job: _refund(new_uow, gateway, job))


def _refund(new_uow: UowFactory, gateway: Gateway, job: Claimed) -> None:
    op_id = job.claim.operation_id
    result = gateway().refund(job.intent_id, job.claim.amount, job.claim.key)
    settle(new_uow, lambda uow: outcomes.record_refund(
        uow, op_id, amount=result.amount, reference=result.id))  # fmt: skip
