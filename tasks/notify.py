"""Stage notifications in the transaction that changes an order: emails to the customer, and
messages to anyone else (the manufacturer, the order desk) by email or signed webhook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from models.db import notifications
from models.db.commerce import Customer, Order
from models.db.uow import UnitOfWork

SEND_JOB = "notification.send"
WEBHOOK_JOB = "notification.webhook"
JOBS = {"email": SEND_JOB, "webhook": WEBHOOK_JOB}


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
    return stage_many(uow, [(order, extra or {})], template, cause) == 1


def stage_many(
    uow: UnitOfWork,
    orders: Sequence[tuple[Order, dict[str, Any]]],
    template: str,
    cause: str,
) -> int:
    """`stage` for many orders (each with its extra context) in two statements; how many new."""
    wanted = {order.customer_id for order, _ in orders}
    customers = {
        c.id: c for c in uow.session.scalars(select(Customer).where(Customer.id.in_(wanted)))
    }
    rows = []
    for order, extra in orders:
        customer = customers.get(order.customer_id)
        if customer is None:
            continue
        rows.append({
            "key": f"order:{order.id}:{cause}:{template}", "order_id": order.id,
            "kind": template, "channel": "email", "recipient": customer.email,
            "template": template, "context": _customer_context(order, customer, extra),
        })  # fmt: skip
    new_ids = notifications.add_many(uow.session, rows, uow.clock())
    jobs = [(f"notify:{i}", {"notification_id": i}) for i in new_ids]
    return uow.stage_many(SEND_JOB, jobs, queue="notifications")


def _customer_context(order: Order, customer: Customer, extra: dict[str, Any]) -> dict[str, Any]:
    return {
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
        **extra,
    }


def stage_to(
    uow: UnitOfWork,
    order: Order,
    recipient: str,
    *,
    template: str,
    cause: str,
    context: dict[str, Any],
    channel: str = "email",
) -> bool:
    """One message about `order` to `recipient` (an address, or a URL for `webhook`), unique per
    (order, cause, template, channel); True when new. `context` is all the template sees."""
    suffix = "" if channel == "email" else f":{channel}"
    new_id = notifications.add(
        uow.session,
        key=f"order:{order.id}:{cause}:{template}{suffix}",
        order_id=order.id,
        kind=template,
        recipient=recipient,
        template=template,
        context=context,
        at=uow.clock(),
        channel=channel,
    )
    if new_id is None:
        return False
    uow.stage(JOBS[channel], f"notify:{new_id}", {"notification_id": new_id}, queue="notifications")
    return True
