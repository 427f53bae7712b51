"""Stage notifications in the transaction that changes an order: emails to the customer, and
messages to anyone else (the manufacturer, the order desk) by email or signed webhook."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from models.db import notifications
from models.db.commerce import Customer, Order
from models.db.uow import JobKind, UnitOfWork

SEND_JOB = JobKind("notification.send", "notifications")
WEBHOOK_JOB = JobKind("notification.webhook", "notifications")
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
    """`stage` for many orders (each with its extra context) in three statements; how many new."""
    return _stage(uow, [(order, cause, extra) for order, extra in orders], template)


def stage_each(uow: UnitOfWork, orders: Sequence[tuple[Order, str]], template: str) -> int:
    """`stage` for many orders, each for its own cause; how many new."""
    return _stage(uow, [(order, cause, {}) for order, cause in orders], template)


def stage_by_template(
    uow: UnitOfWork, items: Sequence[tuple[Order, str, str, dict[str, Any]]]
) -> int:
    """`stage` for many (order, template, cause, extra); how many new."""
    groups: dict[str, list[tuple[Order, str, dict[str, Any]]]] = {}
    for order, template, cause, extra in items:
        groups.setdefault(template, []).append((order, cause, extra))
    return sum(_stage(uow, group, template) for template, group in groups.items())


def _stage(
    uow: UnitOfWork, items: Sequence[tuple[Order, str, dict[str, Any]]], template: str
) -> int:
    if not items:
        return 0
    wanted = {order.customer_id for order, _, _ in items}
    customers = {
        c.id: c for c in uow.session.scalars(select(Customer).where(Customer.id.in_(wanted)))
    }
    messages = []
    for order, cause, extra in items:
        customer = customers.get(order.customer_id)
        if customer is not None:
            context = _customer_context(order, customer, extra)
            messages.append(Outgoing(order.id, customer.email, template, cause, context))
    return stage_all(uow, messages)


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


@dataclass(frozen=True)
class Outgoing:
    """A message about an order to `recipient` (an address, or a URL for `webhook`); `context`
    is all its template (or webhook body) sees."""

    order_id: int
    recipient: str
    template: str
    cause: str
    context: dict[str, Any]
    channel: str = "email"

    def row(self) -> dict[str, Any]:
        """The notification row; its key makes it unique per (order, cause, template, channel)."""
        suffix = "" if self.channel == "email" else f":{self.channel}"
        key = f"order:{self.order_id}:{self.cause}:{self.template}{suffix}"
        return {
            "key": key,
            "order_id": self.order_id,
            "kind": self.template,
            "channel": self.channel,
            "recipient": self.recipient,
            "template": self.template,
            "context": self.context,
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
    """One message about `order` to `recipient`; True when new (see `Outgoing`)."""
    return stage_all(uow, [Outgoing(order.id, recipient, template, cause, context, channel)]) == 1


def stage_all(uow: UnitOfWork, messages: Sequence[Outgoing]) -> int:
    """Stage messages and their send jobs in a fixed number of statements, however many; how
    many were new (one already staged under its key is left alone)."""
    added = 0
    for channel, job in JOBS.items():
        rows = [m.row() for m in messages if m.channel == channel]
        if not rows:
            continue
        new_ids = notifications.add_many(uow.session, rows, uow.clock())
        jobs = [(f"notify:{i}", {"notification_id": i}) for i in new_ids]
        added += uow.stage_many(job, jobs)
    return added
