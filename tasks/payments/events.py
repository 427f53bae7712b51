"""`stripe.event`: a verified webhook event is only a hint; a job reads the PaymentIntent from
Stripe before anything is recorded (tasks/stripe_sync.py)."""

from __future__ import annotations

from sqlalchemy import select

from models.db.commerce import Order, Payment
from models.db.uow import UnitOfWork
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.stripe_event import StripeEventV1
from tasks.payments.requesting import RECONCILE_JOB


def _intent_of(uow: UnitOfWork, event: StripeEventV1) -> str | None:
    obj = event.data.object
    if obj.object == "payment_intent":
        return obj.id
    # Charge events name the charge; our captures record the charge id as their reference.
    query = (
        select(Order.stripe_payment_intent_id)
        .join(Payment, Payment.order_id == Order.id)
        .where(Payment.reference == obj.id)
        .limit(1)
    )
    return uow.session.scalar(query)


def handle_stripe_event(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Stage one reconcile of the event's PaymentIntent (unique per event id)."""
    data = message.data_as(StripeEventV1)
    intent_id = _intent_of(uow, data)
    if intent_id is None:
        return  # not one of ours (or a charge we never captured): nothing to reconcile
    uow.stage(RECONCILE_JOB, f"stripe:{data.id}", {"intent_id": intent_id, "event": data.type})
