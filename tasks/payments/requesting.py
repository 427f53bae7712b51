"""Card payments, phase one: commit the operation row (and its outbox job) in the transaction
that decided it. The call to Stripe and the outcome are phase two (tasks/payment_outcomes.py).

A split family (an order and its `-backorder`s) shares one PaymentIntent: the first shipment
captures for the whole family, under the key of its root order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from models.db import operations
from models.db.commerce import Order
from models.db.ledger import paid_by_card, refresh
from models.db.orders import record
from models.db.uow import JobKind, UnitOfWork
from models.domain.ledger import HoldState
from models.domain.notifications import DESK_HOLD_EXPIRED
from models.domain.payments import hold_expired
from models.domain.statuses import FulfillmentStatus, PaymentMethod
from tasks.notifications import staging as notify

CAPTURE_JOB = JobKind("payment.capture", "payments")
CANCEL_JOB = JobKind("payment.cancel", "payments")
REFUND_JOB = JobKind("payment.refund", "payments")
RECONCILE_JOB = JobKind("stripe.reconcile", "payments")
# Captures one job makes (its Stripe calls go side by side, its outcomes in one transaction).
CAPTURE_BATCH = 50
CANCELLED = FulfillmentStatus.CANCELLED.value


def is_card(order: Order) -> bool:
    """Whether the order is paid by a Stripe card hold (the only kind we charge)."""
    return (
        order.payment_method == PaymentMethod.STRIPE_CARD.value
        and order.stripe_payment_intent_id is not None
    )


def family(uow: UnitOfWork, order: Order) -> list[Order]:
    """Every order sharing the order's PaymentIntent, root (oldest) first, row-locked."""
    return families(uow, [order])[order.id]


def families(uow: UnitOfWork, orders: Sequence[Order]) -> dict[int, list[Order]]:
    """`family` for many orders at once (one statement), keyed by order id; rows are locked in
    id order, as everywhere, so that two transactions cannot deadlock on them."""
    intents = {o.stripe_payment_intent_id for o in orders} - {None}
    found: dict[str | None, list[Order]] = {}
    if intents:
        query = (
            select(Order)
            .where(Order.stripe_payment_intent_id.in_(intents))
            .order_by(Order.id)
            .with_for_update()
        )
        for member in uow.session.scalars(query):
            found.setdefault(member.stripe_payment_intent_id, []).append(member)
    return {
        o.id: found.get(o.stripe_payment_intent_id, [o]) if o.stripe_payment_intent_id else [o]
        for o in orders
    }


def capture_key(root: Order) -> str:
    """The capture's idempotency key: one capture per PaymentIntent family, ever."""
    return f"order:{root.id}:capture"


def request_capture(uow: UnitOfWork, order: Order) -> str:
    """On shipment: commit one capture of the family's amount, unless none can or need be made."""
    return request_captures(uow, [order], {order.id: family(uow, order)})[0]


def request_captures(
    uow: UnitOfWork, orders: Sequence[Order], members: dict[int, list[Order]]
) -> list[str]:
    """`request_capture` for shipped orders with their locked families: the operations in one
    statement and one job for them all; a summary per order."""
    decided = [_capture_row(uow, order, members[order.id]) for order in orders]
    rows = {row["key"]: row for row in decided if not isinstance(row, str)}
    created = operations.create_many(uow.session, list(rows.values()))
    stage_captures(uow, [created[key] for key in rows if key in created])
    summaries, told = [], set()
    for row in decided:
        if isinstance(row, str):
            summaries.append(row)
        elif row["key"] in created and row["key"] not in told:
            told.add(row["key"])
            summaries.append(f"capture of {row['amount']} {row['currency']} requested")
        else:
            summaries.append("capture already requested")
    return summaries


def _capture_row(uow: UnitOfWork, order: Order, members: list[Order]) -> str | dict[str, Any]:
    """The capture operation to commit for a shipped order, or why there is none."""
    hold = HoldState(order.hold_state)
    if hold is HoldState.CAPTURED:
        return "already captured"
    if hold is HoldState.HELD and hold_expired(order.capture_before, uow.clock()):
        expire_hold(uow, members, "the hold lapsed before shipment: not captured")
        # Shipped with no money to take: visible until someone acts (I10).
        members[0].capture_failure = "hold_lapsed: the hold lapsed before shipment"
        hold = HoldState.EXPIRED
    if hold is not HoldState.HELD:
        return f"hold {hold.value}: nothing captured; the order needs a new payment"
    root = members[0]
    amount = left_to_capture(members)
    if amount <= 0:
        # Paid in full by other means ("mark as paid"): charging the card would pay it twice.
        released = _stage(uow, root, "cancel", CANCEL_JOB, None)
        return f"paid in full already: nothing captured; hold release: {released}"
    return operations.row(
        key=capture_key(root),
        kind="capture",
        order_id=root.id,
        amount=amount,
        currency=root.currency,
        at=uow.clock(),
    )


def left_to_capture(members: Sequence[Order]) -> int:
    """What the family's open members still owe, net of what they were paid by other means."""
    return sum(max(m.total - m.paid, 0) for m in members if m.fulfillment_status != CANCELLED)


def stage_captures(uow: UnitOfWork, operation_ids: list[int]) -> None:
    """The capture job for these operations: one job per batch of up to CAPTURE_BATCH."""
    for start in range(0, len(operation_ids), CAPTURE_BATCH):
        batch = operation_ids[start : start + CAPTURE_BATCH]
        if len(batch) == 1:
            uow.stage(CAPTURE_JOB, f"capture:{batch[0]}", {"operation_id": batch[0]})
        else:
            key = f"captures:{batch[0]}+{len(batch) - 1}"
            uow.stage(CAPTURE_JOB, key, {"operation_ids": batch})


def request_release(uow: UnitOfWork, order: Order) -> str:
    """On cancel: release the family's hold once no member is left to ship; refund if paid."""
    members = family(uow, order)
    if HoldState(order.hold_state) is HoldState.CAPTURED:
        return request_refund(uow, order)
    open_members = [m for m in members if m.fulfillment_status != CANCELLED and m is not order]
    if HoldState(order.hold_state) is not HoldState.HELD or open_members:
        return "no hold to release" if not open_members else "hold kept for the rest of the family"
    return _stage(uow, members[0], "cancel", CANCEL_JOB, None)


def request_refund(uow: UnitOfWork, order: Order) -> str:
    """Refund the whole order (what Stripe was paid for it, net); a second request does nothing.
    After a failed capture there is nothing to refund, and the live hold is released instead."""
    if not is_card(order):
        return "nothing paid by card to refund"
    paid = paid_by_card(uow.session, order.id)
    if paid > 0:
        return _stage(uow, order, "refund", REFUND_JOB, paid)
    root = family(uow, order)[0]
    if root.capture_failure is not None and HoldState(order.hold_state) is HoldState.HELD:
        return "capture failed: " + _stage(uow, root, "cancel", CANCEL_JOB, None)
    return "nothing paid by card to refund"


def _stage(uow: UnitOfWork, order: Order, kind: str, job: JobKind, amount: int | None) -> str:
    op_id = operations.create(
        uow.session,
        operations.row(
            key=f"order:{order.id}:{kind}",
            kind=kind,
            order_id=order.id,
            amount=amount,
            currency=order.currency,
            at=uow.clock(),
        ),
    )
    if op_id is None:
        return f"{kind} already requested"
    uow.stage(job, f"{kind}:{op_id}", {"operation_id": op_id})
    return f"{kind} requested" + (f" ({amount} {order.currency})" if amount else "")


def expire_hold(uow: UnitOfWork, members: Sequence[Order], why: str) -> None:
    """Mark a lapsed hold: the family needs a new payment, and the desk is told once."""
    now = uow.clock()
    for member in members:
        if HoldState(member.hold_state) is not HoldState.HELD:
            continue
        member.hold_state = HoldState.EXPIRED.value
        member.updated_at = now
        refresh(uow.session, member)
        record(uow.session, member, now, "payment.hold_expired", why)
    tell_desk(uow, members[0], DESK_HOLD_EXPIRED, "hold", {"reason": why})


def tell_desk(
    uow: UnitOfWork, order: Order, template: str, cause: str, extra: dict[str, object]
) -> bool:
    """One email to the order desk about `order`, unique per (order, cause, template)."""
    desk = uow.options.desk_email
    if not desk:
        return False
    context = {
        "order_number": order.number,
        "currency": order.currency,
        "total": order.total,
        "capture_before": _iso(order.capture_before),
        "note": None,
        "reason": None,
        **extra,
    }
    return notify.stage_to(uow, order, desk, template=template, cause=cause, context=context)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
