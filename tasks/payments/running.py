"""The payment jobs: claim the operations, call Stripe under each one's key, record what really
happened.

A job is for one operation or a batch (the captures of one run of shipments): its Stripe calls
go side by side, and its outcomes are recorded in one transaction. After an unclear outcome the
operation is left `unclear` and the job retried; a retry (and any call whose key may have aged
out, or whose hold time is unknown) reads the PaymentIntent first and acts on its real status,
so no capture, release or refund happens twice and none is lost. Declines and unexpected states
are recorded with their reason, never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select

from models.db import operations
from models.db.commerce import Order
from models.db.failpoints import crash_point
from models.db.uow import UnitOfWork, UowFactory
from models.domain.errors import PermanentError, RetryableError, UnclearOutcome
from models.domain.payments import IntentVerdict, capture_verdict, hold_expired
from tasks.payments import recording as outcomes
from tasks.payments.requesting import CANCELLED, families
from tasks.ports import IntentState, PaymentGateway

# Stripe keeps idempotency keys ~24 h: an older operation reads the intent before calling.
KEY_TRUSTED_FOR = timedelta(hours=23)
Gateway = Callable[[], PaymentGateway]


# An outcome to record: a change, or a capture (captures are recorded together, set-based).
Record = Callable[[UnitOfWork], object] | outcomes.Captured
# The Stripe part of one operation: appends what to record, in order; may raise.
Work = Callable[["Claimed", list[Record]], None]
# Runs the Stripe parts of a batch, maybe side by side; one result (None or the error) each.
Runner = Callable[[list[Callable[[], None]]], list[BaseException | None]]


@dataclass(frozen=True)
class Claimed:
    """What one job run knows after claiming its operation."""

    claim: operations.OperationClaim
    intent_id: str
    live: bool  # some member of the family is not cancelled
    read_first: bool  # read the intent before calling (a retry, an aged key, unknown hold)
    capture_before: datetime | None
    now: datetime  # the unit of work's clock at the claim


def operation_ids(payload: dict[str, Any]) -> list[int]:
    """The operations a payment job is for: one (`operation_id`) or a batch (`operation_ids`)."""
    if "operation_ids" in payload:
        return [int(i) for i in payload["operation_ids"]]
    return [int(payload["operation_id"])]


def claim(new_uow: UowFactory, ids: list[int], stale: timedelta) -> tuple[list[Claimed], bool]:
    """Claim the operations that are open; also whether another worker holds one of the rest
    (settled ones are simply left out)."""
    with new_uow() as uow:
        taken = operations.claim(uow.session, ids, uow.clock(), stale)
        rest = sorted(set(ids) - {t.operation_id for t in taken})
        busy = bool(rest) and operations.any_calling(uow.session, rest)
        roots = _orders(uow, [t.order_id for t in taken])
        members = families(uow, list(roots.values()))
        now = uow.clock()
        uow.commit()
    claimed = []
    for taken_op in taken:
        order, family_ = roots[taken_op.order_id], members[taken_op.order_id]
        assert order.stripe_payment_intent_id is not None
        live = any(m.fulfillment_status != CANCELLED for m in family_)
        aged = now - taken_op.created_at >= KEY_TRUSTED_FOR
        read_first = taken_op.attempt > 1 or aged or order.capture_before is None
        claimed.append(
            Claimed(
                taken_op,
                order.stripe_payment_intent_id,
                live,
                read_first,
                order.capture_before,
                now,
            )
        )
    return claimed, busy


def _orders(uow: UnitOfWork, order_ids: list[int]) -> dict[int, Order]:
    if not order_ids:
        return {}
    query = select(Order).where(Order.id.in_(order_ids))
    return {order.id: order for order in uow.session.scalars(query)}


def settle(new_uow: UowFactory, record: Record) -> None:
    """Record an outcome in its own transaction."""
    settle_all(new_uow, [record], alone=True)


def settle_all(new_uow: UowFactory, records: list[Record], *, alone: bool = False) -> None:
    """Record outcomes in one transaction; should that fail, each in its own, so that the rest
    still land (the failed one is raised; its operation stays claimed and is read again)."""
    if not records:
        return
    try:
        with new_uow() as uow:
            _record(uow, records)
            uow.commit()
    except Exception:
        if alone:
            raise
        _settle_each(new_uow, records)


def _record(uow: UnitOfWork, records: list[Record]) -> None:
    captured = [r for r in records if isinstance(r, outcomes.Captured)]
    for record in records:
        if not isinstance(record, outcomes.Captured):
            record(uow)
    if captured:
        outcomes.record_captures(uow, captured)


def _settle_each(new_uow: UowFactory, records: list[Record]) -> None:
    failure: Exception | None = None
    for record in records:
        try:
            settle(new_uow, record)
        except Exception as error:  # noqa: BLE001 - the rest must still be recorded
            failure = failure or error
    if failure is not None:
        raise failure


def in_turn(calls: list[Callable[[], None]]) -> list[BaseException | None]:
    """A Runner that makes the calls one after another."""
    return [outcome_of(call) for call in calls]


def outcome_of(call: Callable[[], None]) -> BaseException | None:
    """None when the call returned; the error it raised otherwise."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - handed back to the batch, judged there
        return error
    return None


def run_claimed(
    new_uow: UowFactory,
    payload: dict[str, Any],
    stale: timedelta,
    work: Work,
    runner: Runner = in_turn,
) -> None:
    """Claim the payload's operations, run `work` on each, and record every outcome in one
    transaction. Unclear outcomes are left `unclear`, refusals recorded with their reason;
    then the job is retried while any operation is unclear or held by another worker."""
    claimed, busy = claim(new_uow, operation_ids(payload), stale)
    batches: list[list[Record]] = [[] for _ in claimed]
    errors = runner(
        [partial(work, job, records) for job, records in zip(claimed, batches, strict=True)]
    )
    records, retry = [], None
    for job, done, error in zip(claimed, batches, errors, strict=True):
        records += done
        records += _after(job.claim.operation_id, error)
        if error is not None and not isinstance(error, PermanentError):
            retry = retry or error
    settle_all(new_uow, records)
    if retry is not None:
        raise retry
    if busy:
        raise RetryableError("in_progress", "another worker is calling Stripe for it")


def _after(op_id: int, error: BaseException | None) -> list[Record]:
    """What a failed Stripe part leaves on record: unclear (retried) or refused (for good)."""
    if isinstance(error, UnclearOutcome):
        detail = str(error)
        return [
            lambda uow: operations.settle(
                uow.session, op_id, status="unclear", at=uow.clock(), error=detail
            )
        ]
    if isinstance(error, PermanentError):
        reason, why = error.reason, error.detail
        return [lambda uow: outcomes.record_failure(uow, op_id, reason, why)]
    return []  # anything else: the operation stays claimed and is read again when stale


def capture_one(gateway: Gateway, job: Claimed, records: list[Record]) -> None:
    """One capture per family: call with our key, or act on the intent's real status."""
    op_id = job.claim.operation_id
    if not job.live:
        records.append(
            lambda uow: operations.settle(
                uow.session,
                op_id,
                status="skipped",
                at=uow.clock(),
                error="order cancelled",
            )
        )
        return
    stripe = gateway()
    capture_before = job.capture_before
    if job.read_first:
        read = stripe.retrieve(job.intent_id)
        capture_before = read.capture_before
        capturable = capture_verdict(read.status) is IntentVerdict.CAPTURE
        # A first try that goes on to capture need not store the expiry (a retry reads the
        # intent again; a captured hold has none): that saves work per capture.
        if not capturable or job.claim.attempt > 1:
            records.append(lambda uow: outcomes.learn_hold(uow, op_id, read.capture_before))
        if not capturable:
            records.append(capture_outcome(op_id, read))
            return
    if hold_expired(capture_before, job.now):  # no doomed capture attempts
        records.append(lambda uow: outcomes.record_lapsed(uow, op_id))
        return
    assert job.claim.amount is not None
    try:
        state = stripe.capture(job.intent_id, job.claim.amount, job.claim.key)
        crash_point("capture.after_stripe")  # Stripe captured; the outcome is not recorded
    except PermanentError as refused:
        if refused.reason != "payment_intent_unexpected_state":
            raise
        state = stripe.retrieve(job.intent_id)  # e.g. captured by a try whose key aged out
    records.append(capture_outcome(op_id, state))


def capture_outcome(op_id: int, state: IntentState) -> Record:
    """What to record of a capture's real outcome; raises while the intent is in between."""
    verdict = capture_verdict(state.status)
    if verdict is IntentVerdict.CAPTURED:
        return outcomes.Captured(op_id, state.amount_received, state.latest_charge or state.id)
    if verdict is IntentVerdict.RELEASED and state.cancellation_reason == "automatic":
        return lambda uow: outcomes.record_lapsed(uow, op_id)
    if verdict is IntentVerdict.RELEASED:
        raise PermanentError("payment_intent_canceled", "the PaymentIntent was canceled")
    raise UnclearOutcome("intent_not_settled", f"PaymentIntent status {state.status}")
