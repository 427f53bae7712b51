"""`order.cancelled` and `order.refund_requested`: the order's status, and the card operation
(release the hold, or refund) committed in the same transaction."""

from __future__ import annotations

from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.statuses import FulfillmentStatus
from tasks.intake.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderCancelledV1, OrderRefundRequestedV1
from tasks.orders.fulfillment import move
from tasks.payments import requesting as payments


def cancel_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Cancel; a card hold is released (or, if captured, refunded); reserved stock returns."""
    data = message.data_as(OrderCancelledV1)
    order = require_order(uow, data.number)
    summary = move(
        uow,
        order,
        message,
        FulfillmentStatus.CANCELLED,
        {"reason": data.reason},
        notify_customer=data.notify_customer,
    )
    if payments.is_card(order):
        summary += "; " + payments.request_release(uow, order)
    record(
        uow.session,
        order,
        uow.clock(),
        "order.cancelled",
        summary,
        details={"reason": data.reason},
        envelope_id=str(message.envelope.id),
    )


def request_refund(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Refund the whole order by card; a second request finds the refund already requested."""
    data = message.data_as(OrderRefundRequestedV1)
    order = require_order(uow, data.number)
    summary = payments.request_refund(uow, order)
    record(
        uow.session,
        order,
        uow.clock(),
        "order.refund_requested",
        summary,
        details={"reason": data.reason},
        envelope_id=str(message.envelope.id),
    )
