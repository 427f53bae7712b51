"""`order.fulfillment_changed`: move the fulfillment axis along a legal transition."""

from __future__ import annotations

from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.fulfillment import check_transition
from models.domain.statuses import FulfillmentStatus
from tasks.handlers.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderFulfillmentChangedV1


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
    else:
        summary = f"fulfillment stays {before.value}"
    record(uow.session, order, now, "order.fulfillment_changed", summary,
           details={"note": data.note}, envelope_id=str(message.envelope.id))  # fmt: skip
