"""Stage customer notifications in the transaction that changes an order's status."""

from __future__ import annotations

from typing import Any

from models.db import notifications
from models.db.commerce import Customer, Order
from models.db.uow import UnitOfWork

SEND_JOB = "notification.send"


def stage(
    uow: UnitOfWork,
    order: Order,
    template: str,
    cause: str,
    extra: dict[str, Any] | None = None,
) -> bool:
    """One email to the order's customer, unique per (order, cause, template); True when new.

    `cause` is what made the change (an envelope id), so a change delivered twice still
    makes one email, while a later change to the same status makes another.
    """
    customer = uow.session.get(Customer, order.customer_id)
    if customer is None:
        return False
    context = {
        "order_number": order.number,
        "customer_name": customer.name,
        "currency": order.currency,
        "total": order.total,
        "payment_status": order.payment_status,
        "fulfillment_status": order.fulfillment_status,
        # Every template may use these; absent means None, never an undefined variable.
        "note": None,
        "reason": None,
        "carrier": None,
        "tracking_numbers": [],
        **(extra or {}),
    }
    key = f"order:{order.id}:{cause}:{template}"
    new_id = notifications.add(
        uow.session,
        key=key,
        order_id=order.id,
        kind=template,
        recipient=customer.email,
        template=template,
        context=context,
        at=uow.clock(),
    )
    if new_id is None:
        return False
    uow.stage(SEND_JOB, f"notify:{new_id}", {"notification_id": new_id}, queue="notifications")
    return True
