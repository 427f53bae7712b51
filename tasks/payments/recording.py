"""Card payments, phase two: record what Stripe really did, in the transaction that settles the
operation (so an outcome is recorded once, whichever worker or webhook learns it first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from models.db import operations
from models.db.commerce import Order, Payment
from models.db.ledger import Refreshed, refresh, refresh_many
from models.db.machinery import ExternalOperation
from models.db.orders import record, record_many
from models.db.uow import UnitOfWork
from models.domain.ledger import HoldState
from models.domain.notifications import DESK_CAPTURE_FAILED, PAYMENT_FAILED, payment_template
from models.domain.payments import CARD_PROBLEMS, share
from tasks.notifications import staging as notify
from tasks.outbox import egress
from tasks.payments.requesting import (
    CANCELLED,
    capture_key,
    expire_hold,
    families,
    family,
    request_refund,
    tell_desk,
)


def _operation(uow: UnitOfWork, operation_id: int) -> tuple[ExternalOperation, Order]:
    op = uow.session.get(ExternalOperation, operation_id, with_for_update=True)
    assert op is not None
    assert op.order_id is not None
    order = uow.session.get(Order, op.order_id, with_for_update=True)
    assert order is not None
    return op, order


def _changed(uow: UnitOfWork, order: Order, change: Refreshed, cause: str) -> None:
    template = payment_template(change.before, change.after)
    if template is not None:
        notify.stage(uow, order, template, cause)


@dataclass(frozen=True)
class Captured:
    """A capture Stripe reports for an operation: how much, and its charge."""

    operation_id: int
    amount: int
    reference: str


def record_capture(uow: UnitOfWork, operation_id: int, *, amount: int, reference: str) -> bool:
    """The family's capture happened: one stripe payment per member, shares by their totals."""
    return bool(record_captures(uow, [Captured(operation_id, amount, reference)]))


def record_captures(uow: UnitOfWork, captures: Sequence[Captured]) -> list[int]:
    """`record_capture` for many operations in a fixed number of statements; the operations
    recorded now (one already settled is left as it is)."""
    now = uow.clock()
    ops = operations.lock_unsettled(uow.session, [c.operation_id for c in captures])
    todo = list({c.operation_id: c for c in captures if c.operation_id in ops}.values())
    roots = _locked_orders(uow, [ops[c.operation_id].order_id for c in todo])
    members = families(uow, list(roots.values()))
    payments, shared, published = [], [], []
    for capture in todo:
        op = ops[capture.operation_id]
        result = {"captured": capture.amount, "reference": capture.reference}
        operations.mark(op, status="done", at=now, result=result)
        root = roots[op.order_id or 0]
        paying = [m for m in members[root.id] if m.fulfillment_status != CANCELLED] or [root]
        # Each member's share is what it still owed: a part paid by other means stays paid.
        owed = [max(m.total - m.paid, 0) for m in paying]
        for member, part in zip(paying, share(capture.amount, owed), strict=True):
            member.hold_state = HoldState.CAPTURED.value
            member.capture_failure = None
            member.updated_at = now
            if part:
                payments.append(
                    {
                        "order_id": member.id,
                        "amount": part,
                        "currency": member.currency,
                        "method": "stripe_card",
                        "source": "stripe",
                        "reference": capture.reference,
                        "at": now,
                    }
                )
            shared.append((member, part, capture, op.key))
        published.append(
            (
                op.key,
                {
                    "number": root.number,
                    "amount": capture.amount,
                    "currency": root.currency,
                    "payment_intent": root.stripe_payment_intent_id,
                    "orders": [m.number for m in paying],
                },
            )
        )
    # The locking queries above flushed whatever was pending before, the payments are Core
    # inserts, and the hold states set here do not enter the sums: the figures need no flush
    # first, and each order is written once, hold state and figures together.
    with uow.session.no_autoflush:
        if payments:
            uow.session.execute(insert(Payment), payments)
        paid = list({m.id: m for m, *_ in shared}.values())
        changes = refresh_many(uow.session, paid, flush=False)
    emails: list[tuple[Order, str, str, dict[str, Any]]] = []
    events = []
    for member, part, capture, key in shared:
        change = changes[member.id]
        template = payment_template(change.before, change.after)
        if template is not None:
            emails.append((member, template, key, {}))
        events.append(
            {
                "order_id": member.id,
                "at": now,
                "kind": "payment.captured",
                "summary": f"captured {part} {member.currency} of {capture.amount} "
                f"({capture.reference}); payment {change.before.value} -> "
                f"{change.after.value}",
            }
        )
    notify.stage_by_template(uow, emails)
    record_many(uow.session, events)
    if len(published) > 1:  # one job carries the batch's events, not one job each
        batch = f"payment.captured:{published[0][0]}+{len(published) - 1}"
        egress.emit_batch(uow, batch, "payment.captured", published)
    else:
        egress.emit_many(uow, "payment.captured", published)
    return [c.operation_id for c in todo]


def _locked_orders(uow: UnitOfWork, order_ids: list[int | None]) -> dict[int, Order]:
    query = select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
    return {order.id: order for order in uow.session.scalars(query)}


def record_release(uow: UnitOfWork, operation_id: int, *, lapsed: bool) -> bool:
    """The hold is gone without a capture: released on cancel, or lapsed (needs new payment)."""
    _, root = _operation(uow, operation_id)
    if not operations.settle(
        uow.session,
        operation_id,
        status="done",
        at=uow.clock(),
        result={"released": True, "lapsed": lapsed},
    ):
        return False
    members = family(uow, root)
    if lapsed:
        expire_hold(uow, members, "Stripe reports the hold lapsed")
    else:
        release_hold(uow, members)
    return True


def release_hold(uow: UnitOfWork, members: list[Order]) -> None:
    """The hold was released (cancelled) before any capture: the family's payment is voided."""
    now = uow.clock()
    for member in members:
        member.capture_failure = None  # the desk acted: nothing is left to capture
        if HoldState(member.hold_state) is HoldState.HELD:
            member.hold_state = HoldState.RELEASED.value
            member.updated_at = now
            refresh(uow.session, member)
            record(uow.session, member, now, "payment.released", "card hold released")


def record_refund(uow: UnitOfWork, operation_id: int, *, amount: int, reference: str) -> bool:
    """The refund happened: a negative stripe payment on the order."""
    op, order = _operation(uow, operation_id)
    if not operations.settle(
        uow.session,
        operation_id,
        status="done",
        at=uow.clock(),
        result={"refunded": amount, "reference": reference},
    ):
        return False
    book_refund(
        uow,
        order,
        amount,
        reference,
        cause=op.key,
        summary=f"refunded {amount} {order.currency} ({reference})",
    )
    return True


def book_refund(
    uow: UnitOfWork, order: Order, amount: int, reference: str, *, cause: str, summary: str
) -> None:
    """A Stripe refund on the order's ledger: the payment, its statuses, the customer's email
    (once per `cause`) and the timeline entry."""
    now = uow.clock()
    uow.session.add(
        Payment(
            order_id=order.id,
            amount=-amount,
            currency=order.currency,
            method="stripe_card",
            source="stripe",
            reference=reference,
            at=now,
        )
    )
    order.updated_at = now
    change = refresh(uow.session, order)
    _changed(uow, order, change, cause)
    record(
        uow.session,
        order,
        now,
        "payment.refunded",
        f"{summary}; payment {change.before.value} -> {change.after.value}",
    )


def learn_hold(uow: UnitOfWork, operation_id: int, capture_before: datetime | None) -> None:
    """Store when the family's hold lapses, as Stripe reports it."""
    _, root = _operation(uow, operation_id)
    for member in family(uow, root):
        member.capture_before = capture_before


def record_lapsed(uow: UnitOfWork, operation_id: int) -> bool:
    """The hold lapsed before capture: no capture is attempted; the family needs a new payment
    and the desk is told."""
    op, root = _operation(uow, operation_id)
    if not operations.settle(
        uow.session,
        operation_id,
        status="failed",
        at=uow.clock(),
        error="hold_lapsed: the hold expired before capture",
    ):
        return False
    expire_hold(uow, family(uow, root), f"{op.kind}: the card hold expired; needs a new payment")
    if op.kind == "capture":  # shipped, and nothing can be captured: a person must act (I10)
        root.capture_failure = "hold_lapsed: the hold expired before capture"
    return True


def record_failure(uow: UnitOfWork, operation_id: int, reason: str, detail: str) -> bool:
    """A permanent refusal: kept on the operation; the desk (and for a capture, the customer)
    told once."""
    op, order = _operation(uow, operation_id)
    if not operations.settle(
        uow.session, operation_id, status="failed", at=uow.clock(), error=f"{reason}: {detail}"
    ):
        return False
    record(uow.session, order, uow.clock(), f"payment.{op.kind}_failed", f"{reason}: {detail}")
    tell_desk(uow, order, DESK_CAPTURE_FAILED, op.key, {"reason": f"{op.kind} failed: {reason}"})
    if op.kind == "capture":
        # Kept on the root until someone acts: `order show`, `orderflow status` (I10).
        order.capture_failure = f"{reason}: {detail}"[:500]
        order.updated_at = uow.clock()
        if reason in CARD_PROBLEMS:
            notify.stage(uow, order, PAYMENT_FAILED, op.key, {"reason": reason})
    return True


def refund_cancelled_after_capture(uow: UnitOfWork, operation_id: int) -> bool:
    """A cancel found the money already captured: refund every cancelled member instead."""
    _, root = _operation(uow, operation_id)
    if not operations.settle(
        uow.session, operation_id, status="done", at=uow.clock(), result={"became": "refund"}
    ):
        return False
    for member in family(uow, root):
        if member.fulfillment_status == CANCELLED:
            record(
                uow.session,
                member,
                uow.clock(),
                "payment.cancel",
                "captured before the cancel: " + request_refund(uow, member),
            )
    return True


def cancel_found_captured(
    uow: UnitOfWork, operation_id: int, *, amount: int, reference: str
) -> bool:
    """A cancel found the money captured: put the capture on record (once), then refund."""
    _, root = _operation(uow, operation_id)
    ensure_captured(uow, root, amount=amount, reference=reference)
    return refund_cancelled_after_capture(uow, operation_id)


def ensure_captured(uow: UnitOfWork, root: Order, *, amount: int, reference: str) -> bool:
    """Put a capture Stripe reports on record under the family's capture key (once)."""
    key = capture_key(root)
    capture_id = operations.create(
        uow.session,
        operations.row(
            key=key,
            kind="capture",
            order_id=root.id,
            amount=amount,
            currency=root.currency,
            at=uow.clock(),
        ),
    )
    if capture_id is None:
        existing = operations.find(uow.session, key)
        assert existing is not None
        capture_id = existing.id
    return record_capture(uow, capture_id, amount=amount, reference=reference)
