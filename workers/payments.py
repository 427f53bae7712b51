"""The payment jobs: claim the operation, call Stripe under its key, record what really happened.

After an unclear outcome the operation is left `unclear` and the job retried; a retry (and
any call whose key may have aged out, or whose hold time is unknown) reads the PaymentIntent
first and acts on its real status, so no capture, release or refund happens twice and none
is lost. Declines and unexpected states are recorded with their reason, never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.db import operations
from models.db.commerce import Order
from models.db.failpoints import crash_point
from models.db.uow import UnitOfWork, UowFactory
from models.domain.errors import PermanentError, RetryableError, UnclearOutcome
from models.domain.payments import IntentVerdict, capture_verdict, hold_expired
from tasks import payment_outcomes as outcomes
from tasks.payments import CANCELLED, family
from workers.stripe_adapter import IntentState, StripeGateway

# Stripe keeps idempotency keys ~24 h: an older operation reads the intent before calling.
KEY_TRUSTED_FOR = timedelta(hours=23)
Gateway = Callable[[], StripeGateway]


@dataclass(frozen=True)
class Claimed:
    """What one job run knows after claiming its operation."""

    claim: operations.OperationClaim
    intent_id: str
    live: bool  # some member of the family is not cancelled
    read_first: bool  # read the intent before calling (a retry, an aged key, unknown hold)
    capture_before: datetime | None


def claim(new_uow: UowFactory, operation_id: int, stale: timedelta) -> Claimed | None:
    """Claim the operation; None when it is settled; retry while another worker holds it."""
    with new_uow() as uow:
        taken = operations.claim(uow.session, operation_id, uow.clock(), stale)
        if taken is None:
            busy = operations.status_of(uow.session, operation_id) == "calling"
            uow.commit()
            if busy:
                raise RetryableError("in_progress", "another worker is calling Stripe for it")
            return None
        order = uow.session.get(Order, taken.order_id)
        assert order is not None
        assert order.stripe_payment_intent_id is not None
        live = any(m.fulfillment_status != CANCELLED for m in family(uow, order))
        aged = uow.clock() - taken.created_at >= KEY_TRUSTED_FOR
        read_first = taken.attempt > 1 or aged or order.capture_before is None
        uow.commit()
    return Claimed(taken, order.stripe_payment_intent_id, live, read_first, order.capture_before)


def settle(new_uow: UowFactory, record: Callable[[UnitOfWork], object]) -> None:
    """Record an outcome in its own transaction."""
    with new_uow() as uow:
        record(uow)
        uow.commit()


def guarded(new_uow: UowFactory, operation_id: int, call: Callable[[], None]) -> None:
    """Run the Stripe part: unclear → left `unclear` and retried; refused → recorded."""
    try:
        call()
    except UnclearOutcome as unclear:
        error = str(unclear)
        settle(new_uow, lambda uow: operations.settle(
            uow.session, operation_id, status="unclear", at=uow.clock(), error=error))  # fmt: skip
        raise
    except PermanentError as refused:
        reason, detail = refused.reason, refused.detail
        settle(new_uow, lambda uow: outcomes.record_failure(uow, operation_id, reason, detail))


def run_claimed(
    new_uow: UowFactory, payload: dict[str, Any], stale: timedelta, work: Callable[[Claimed], None]
) -> None:
    """Claim the payload's operation and run `work` on it, guarded; nothing when settled."""
    job = claim(new_uow, int(payload["operation_id"]), stale)
    if job is not None:
        guarded(new_uow, job.claim.operation_id, lambda: work(job))


def capture(
    new_uow: UowFactory, gateway: Gateway, payload: dict[str, Any], stale: timedelta
) -> None:
    """One capture per family: call with our key, or act on the intent's real status."""
    run_claimed(new_uow, payload, stale, lambda job: _capture(new_uow, gateway, job))


def _capture(new_uow: UowFactory, gateway: Gateway, job: Claimed) -> None:
    op_id = job.claim.operation_id
    if not job.live:
        settle(new_uow, lambda uow: operations.settle(
            uow.session, op_id, status="skipped", at=uow.clock(), error="order cancelled",
        ))  # fmt: skip
        return
    stripe = gateway()
    capture_before = job.capture_before
    if job.read_first:
        read = stripe.retrieve(job.intent_id)
        capture_before = read.capture_before
        capturable = capture_verdict(read.status) is IntentVerdict.CAPTURE
        # A first try that goes on to capture need not store the expiry (a retry reads the
        # intent again; a captured hold has none): that saves a transaction per capture.
        if not capturable or job.claim.attempt > 1:
            settle(new_uow, lambda uow: outcomes.learn_hold(uow, op_id, read.capture_before))
        if not capturable:
            apply_capture_verdict(new_uow, op_id, read)
            return
    if hold_expired(capture_before, datetime.now(UTC)):  # no doomed capture attempts
        settle(new_uow, lambda uow: outcomes.record_lapsed(uow, op_id))
        return
    assert job.claim.amount is not None
    try:
        state = stripe.capture(job.intent_id, job.claim.amount, job.claim.key)
        crash_point("capture.after_stripe")  # Stripe captured; the outcome is not recorded
    except PermanentError as refused:
        if refused.reason != "payment_intent_unexpected_state":
            raise
        state = stripe.retrieve(job.intent_id)  # e.g. captured by a try whose key aged out
    apply_capture_verdict(new_uow, op_id, state)


def apply_capture_verdict(new_uow: UowFactory, op_id: int, state: IntentState) -> None:
    """Record a capture's real outcome; retry while the intent is still in between."""
    verdict = capture_verdict(state.status)
    if verdict is IntentVerdict.CAPTURED:
        reference = state.latest_charge or state.id
        settle(new_uow, lambda uow: outcomes.record_capture(
            uow, op_id, amount=state.amount_received, reference=reference))  # fmt: skip
    elif verdict is IntentVerdict.RELEASED and state.cancellation_reason == "automatic":
        settle(new_uow, lambda uow: outcomes.record_lapsed(uow, op_id))
    elif verdict is IntentVerdict.RELEASED:
        raise PermanentError("payment_intent_canceled", "the PaymentIntent was canceled")
    else:
        raise UnclearOutcome("intent_not_settled", f"PaymentIntent status {state.status}")
