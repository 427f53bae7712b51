"""Fulfillment messages: `order.fulfillment_changed` and `order.shipped`.

Changes are ordered by when they happened (the envelope's `occurred_at`), not by when they
arrive: a change older than the current status is recorded and told to the customer, but does
not move the status back. Only a newer change must be a legal transition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.db import backlog, stock
from models.db.commerce import Order
from models.db.orders import record, record_many
from models.db.uow import UnitOfWork
from models.domain.fulfillment import check_transition
from models.domain.notifications import fulfillment_template
from models.domain.statuses import FulfillmentStatus
from tasks.intake.base import lock_run, require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderFulfillmentChangedV1, OrderShippedV1
from tasks.notifications import staging as notify
from tasks.payments import requesting as payments


@dataclass(frozen=True)
class Moved:
    """What a fulfillment change did to one order."""

    summary: str
    changed: bool  # the status moved (reserved stock follows it)
    template: str | None  # the customer email it calls for, if the customer is to be told


def move(
    uow: UnitOfWork,
    order: Order,
    message: DecodedMessage,
    target: FulfillmentStatus,
    extra: dict[str, Any],
    *,
    notify_customer: bool,
) -> str:
    """Apply (or, if it is older than the current status, record) a change; the summary."""
    moved = _move(uow, order, message, target)
    if moved.changed:
        _settle_reserved_stock(uow, order, target)
    if moved.template is not None and notify_customer:
        notify.stage(uow, order, moved.template, str(message.envelope.id), extra)
    return moved.summary


def _move(
    uow: UnitOfWork, order: Order, message: DecodedMessage, target: FulfillmentStatus
) -> Moved:
    """The change on the order's row alone (no stock, no email)."""
    before = FulfillmentStatus(order.fulfillment_status)
    happened = message.envelope.occurred_at
    late = order.fulfillment_changed_at is not None and happened < order.fulfillment_changed_at
    if late:
        summary = f"{target.value} happened before {before.value} (arrived late): status kept"
    elif check_transition(before, target):
        order.fulfillment_status = target.value
        order.fulfillment_changed_at = happened
        summary = f"fulfillment {before.value} -> {target.value}"
    else:
        return Moved(f"fulfillment stays {before.value}", False, None)
    order.updated_at = uow.clock()
    return Moved(summary, not late, fulfillment_template(before, target))


def _settle_reserved_stock(uow: UnitOfWork, order: Order, target: FulfillmentStatus) -> None:
    """Stock held for the order leaves with the goods (its backlog is delivered), or goes back
    when it is cancelled."""
    if target in (FulfillmentStatus.SHIPPED, FulfillmentStatus.FULFILLED):
        stock.ship_reserved(uow.session, order.id)
        backlog.mark_shipped(uow.session, [order.id])
    elif target is FulfillmentStatus.CANCELLED:
        stock.release_reservations(uow.session, order.id)


def change_fulfillment(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Apply the new status, or refuse an illegal move (and change nothing)."""
    data = message.data_as(OrderFulfillmentChangedV1)
    order = require_order(uow, data.number)
    target = FulfillmentStatus(data.status.value)
    before = order.fulfillment_status
    summary = move(
        uow, order, message, target, {"note": data.note}, notify_customer=data.notify_customer
    )
    if _fulfilled_unshipped(order, before) and payments.is_card(order):
        # Goods that reach the customer without a shipment message still pay: a card order
        # never ends fulfilled with its hold uncaptured (I4).
        summary += "; " + payments.request_capture(uow, order)
    record(
        uow.session,
        order,
        uow.clock(),
        "order.fulfillment_changed",
        summary,
        details={"note": data.note},
        envelope_id=str(message.envelope.id),
    )


def _fulfilled_unshipped(order: Order, before: str) -> bool:
    """Whether the order just became fulfilled without passing through shipped."""
    done = (FulfillmentStatus.FULFILLED.value, FulfillmentStatus.SHIPPED.value)
    return order.fulfillment_status == done[0] and before not in done


def ship_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Mark shipped with tracking; a card order's capture is committed in the same transaction.

    The amount and PaymentIntent come from the database, never from the message. Orders paid
    on account or offline are not charged (the external billing system bills them).
    """
    data = _shipped(message)
    order = require_order(uow, data.number)
    extra = _add_tracking(order, data)
    summary = move(
        uow, order, message, FulfillmentStatus.SHIPPED, extra, notify_customer=data.notify_customer
    )
    if payments.is_card(order):
        summary += "; " + payments.request_capture(uow, order)
    record(
        uow.session,
        order,
        uow.clock(),
        "order.shipped",
        _shipped_summary(summary, data),
        details={"carrier": data.carrier, "note": data.note},
        envelope_id=str(message.envelope.id),
    )


def ship_orders(uow: UnitOfWork, messages: Sequence[DecodedMessage]) -> list[str] | None:
    """`ship_order` for a run of messages in a fixed number of statements; None when one of
    them needs the one-by-one path (its order is not here yet, it repeats a number, or its
    card hold is shared by a split family)."""
    shipped = [_shipped(m) for m in messages]
    numbers = [data.number for data in shipped]
    found = lock_run(uow, numbers)
    if found is None:
        return None
    cards = [found[n] for n in numbers if payments.is_card(found[n])]
    members = payments.families(uow, cards)
    if any(len(family) > 1 for family in members.values()):
        return None
    moves, emails = [], []
    for message, data in zip(messages, shipped, strict=True):
        order = found[data.number]
        extra = _add_tracking(order, data)
        moved = _move(uow, order, message, FulfillmentStatus.SHIPPED)
        moves.append(moved)
        if moved.template is not None and data.notify_customer:
            emails.append((order, moved.template, str(message.envelope.id), extra))
    gone = [found[n].id for n, m in zip(numbers, moves, strict=True) if m.changed]
    stock.ship_reserved_many(uow.session, gone)
    backlog.mark_shipped(uow.session, gone)
    notify.stage_by_template(uow, emails)
    captures = iter(payments.request_captures(uow, cards, members))
    now, events = uow.clock(), []
    for message, data, moved in zip(messages, shipped, moves, strict=True):
        order = found[data.number]
        summary = moved.summary
        if payments.is_card(order):
            summary += "; " + next(captures)
        events.append(
            {
                "order_id": order.id,
                "at": now,
                "kind": "order.shipped",
                "summary": _shipped_summary(summary, data),
                "details": {"carrier": data.carrier, "note": data.note},
                "envelope_id": str(message.envelope.id),
            }
        )
    record_many(uow.session, events)
    return []


def _shipped(message: DecodedMessage) -> OrderShippedV1:
    return message.data_as(OrderShippedV1)


def _add_tracking(order: Order, data: OrderShippedV1) -> dict[str, Any]:
    """Keep the new tracking numbers and carrier; the email context they make."""
    order.tracking_numbers = list(dict.fromkeys([*order.tracking_numbers, *data.tracking_numbers]))
    order.carrier = data.carrier or order.carrier
    return {"note": data.note, "carrier": order.carrier, "tracking_numbers": order.tracking_numbers}


def _shipped_summary(summary: str, data: OrderShippedV1) -> str:
    return f"{summary}; tracking {', '.join(data.tracking_numbers) or 'no tracking'}"
