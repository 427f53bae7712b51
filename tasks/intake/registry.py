"""Which handler applies which message type (types without one are quarantined, not lost)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.db.uow import UnitOfWork
from tasks.backlog import delivery_notes
from tasks.backlog import requests as paid_backlog
from tasks.backorders import restock
from tasks.backorders import split as backorders
from tasks.intake import inventory, manufacturers
from tasks.intake.base import Handler
from tasks.messages.catalogue import DecodedMessage
from tasks.orders import cancelling, fulfillment, ledger, placing
from tasks.orders import changes as orders
from tasks.payments import events as stripe_events

# Applies many messages of one type at once; returns the order numbers it created, or None
# when the run must be applied one by one instead.
BulkHandler = Callable[[UnitOfWork, Sequence[DecodedMessage]], list[str] | None]

HANDLERS: dict[str, Handler] = {
    "manufacturer.upserted": manufacturers.upsert_manufacturer,
    "order.placed": placing.place_order,
    "order.accepted": orders.accept_order,
    "order.confirmed": orders.confirm_order,
    "order.lines_changed": orders.change_lines,
    "order.archived": orders.archive_order,
    "inventory.set": inventory.set_inventory,
    "inventory.received": restock.receive_inventory,
    "order.split_requested": backorders.split_order,
    "invoice.issued": ledger.issue_invoice,
    "payment.recorded": ledger.record_payment,
    "order.fulfillment_changed": fulfillment.change_fulfillment,
    "order.shipped": fulfillment.ship_order,
    "order.cancelled": cancelling.cancel_order,
    "order.refund_requested": cancelling.request_refund,
    "stripe.event": stripe_events.handle_stripe_event,
    "paid_backlog.requested": paid_backlog.request_paid_backlog,
    "delivery_note.requested": delivery_notes.make_delivery_note,
}

BULK_HANDLERS: dict[str, BulkHandler] = {
    "order.placed": placing.place_orders,
    "order.accepted": orders.accept_orders,
    "order.confirmed": orders.confirm_orders,
    "order.shipped": fulfillment.ship_orders,
}
