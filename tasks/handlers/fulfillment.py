"""`order.fulfillment_changed`: move the fulfillment axis along a legal transition."""

from __future__ import annotations

from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError
from models.domain.fulfillment import check_transition
from models.domain.notifications import fulfillment_template
from models.domain.statuses import FulfillmentStatus, PaymentMethod
from tasks import notify
from tasks.handlers.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderFulfillmentChangedV1, OrderShippedV1


def change_fulfillment(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Apply the new status, or refuse an illegal move (and change nothing)."""
    data = message.data
    assert isinstance(data, OrderFulfillmentChangedV1)
    order = require_order(uow, data.number)
    before = FulfillmentStatus(order.fulfillment_status)
    target = FulfillmentStatus(data.status.value)
    now = uow.clock()
    if check_transition(before, target):
        order.fulfillment_status = target.value
        order.updated_at = now
        summary = f"fulfillment {before.value} -> {target.value}"
        template = fulfillment_template(before, target)
        if template is not None and data.notify_customer:
            notify.stage(uow, order, template, str(message.envelope.id), {"note": data.note})
    else:
        summary = f"fulfillment stays {before.value}"
    record(uow.session, order, now, "order.fulfillment_changed", summary,
           details={"note": data.note}, envelope_id=str(message.envelope.id))  # fmt: skip


def ship_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Mark shipped with tracking; orders paid on account or offline are not charged.

    Card orders are captured on shipment; until that lands they are refused (and so kept in
    the quarantine, replayable), never shipped uncaptured.
    """
    data = message.data
    assert isinstance(data, OrderShippedV1)
    order = require_order(uow, data.number)
    if order.payment_method == PaymentMethod.STRIPE_CARD.value:
        raise PermanentError("no_handler", "capture on shipment is not available yet")
    before = FulfillmentStatus(order.fulfillment_status)
    now = uow.clock()
    changed = check_transition(before, FulfillmentStatus.SHIPPED)
    order.tracking_numbers = list(dict.fromkeys([*order.tracking_numbers, *data.tracking_numbers]))
    order.carrier = data.carrier or order.carrier
    order.fulfillment_status = FulfillmentStatus.SHIPPED.value
    order.updated_at = now
    if changed and data.notify_customer:
        extra = {
            "note": data.note,
            "carrier": order.carrier,
            "tracking_numbers": order.tracking_numbers,
        }
        notify.stage(uow, order, "fulfillment_shipped", str(message.envelope.id), extra)
    record(uow.session, order, now, "order.shipped",
           f"shipped with {', '.join(data.tracking_numbers) or 'no tracking'}",
           details={"carrier": data.carrier, "note": data.note},
           envelope_id=str(message.envelope.id))  # fmt: skip
