"""Fulfillment messages: `order.fulfillment_changed` and `order.shipped`.

Changes are ordered by when they happened (the envelope's `occurred_at`), not by when they
arrive: a change older than the current status is recorded and told to the customer, but does
not move the status back. Only a newer change must be a legal transition.
"""

from __future__ import annotations

from typing import Any

from models.db import stock
from models.db.commerce import Order
from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.fulfillment import check_transition
from models.domain.notifications import fulfillment_template
from models.domain.statuses import FulfillmentStatus
from tasks import notify, payments
from tasks.handlers.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderFulfillmentChangedV1, OrderShippedV1


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
    before = FulfillmentStatus(order.fulfillment_status)
    happened = message.envelope.occurred_at
    late = order.fulfillment_changed_at is not None and happened < order.fulfillment_changed_at
    if late:
        summary = f"{target.value} happened before {before.value} (arrived late): status kept"
    elif check_transition(before, target):
        order.fulfillment_status = target.value
        order.fulfillment_changed_at = happened
        summary = f"fulfillment {before.value} -> {target.value}"
        _settle_reserved_stock(uow, order, target)
    else:
        return f"fulfillment stays {before.value}"
    order.updated_at = uow.clock()
    template = fulfillment_template(before, target)
    if template is not None and notify_customer:
        notify.stage(uow, order, template, str(message.envelope.id), extra)
    return summary


def _settle_reserved_stock(uow: UnitOfWork, order: Order, target: FulfillmentStatus) -> None:
    """Stock held for the order leaves with the goods, or goes back when it is cancelled."""
    if target is FulfillmentStatus.SHIPPED:
        stock.ship_reserved(uow.session, order.id)
    elif target is FulfillmentStatus.CANCELLED:
        stock.release_reservations(uow.session, order.id)


def change_fulfillment(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Apply the new status, or refuse an illegal move (and change nothing)."""
    data = message.data
    assert isinstance(data, OrderFulfillmentChangedV1)
    order = require_order(uow, data.number)
    target = FulfillmentStatus(data.status.value)
    summary = move(uow, order, message, target, {"note": data.note},
                   notify_customer=data.notify_customer)  # fmt: skip
    record(uow.session, order, uow.clock(), "order.fulfillment_changed", summary,
           details={"note": data.note}, envelope_id=str(message.envelope.id))  # fmt: skip


def ship_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Mark shipped with tracking; a card order's capture is committed in the same transaction.

    The amount and PaymentIntent come from the database, never from the message. Orders paid
    on account or offline are not charged (the external billing system bills them).
    """
    data = message.data
    assert isinstance(data, OrderShippedV1)
    order = require_order(uow, data.number)
    order.tracking_numbers = list(dict.fromkeys([*order.tracking_numbers, *data.tracking_numbers]))
    order.carrier = data.carrier or order.carrier
    tracking_numbers = order.tracking_numbers
    extra = {"note": data.note, "carrier": order.carrier, "tracking_numbers": tracking_numbers}
    summary = move(uow, order, message, FulfillmentStatus.SHIPPED, extra,
                   notify_customer=data.notify_customer)  # fmt: skip
    if payments.is_card(order):
        summary += "; " + payments.request_capture(uow, order)
    tracking = ", ".join(data.tracking_numbers) or "no tracking"
    record(uow.session, order, uow.clock(), "order.shipped", f"{summary}; tracking {tracking}",
           details={"carrier": data.carrier, "note": data.note},
           envelope_id=str(message.envelope.id))  # fmt: skip
