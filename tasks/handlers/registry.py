"""Which handler applies which message type (types without one are quarantined, not lost)."""

from __future__ import annotations

from tasks.handlers import fulfillment, inventory, ledger, manufacturers, orders
from tasks.handlers.base import Handler

HANDLERS: dict[str, Handler] = {
    "manufacturer.upserted": manufacturers.upsert_manufacturer,
    "order.placed": orders.place_order,
    "order.accepted": orders.accept_order,
    "order.confirmed": orders.confirm_order,
    "order.lines_changed": orders.change_lines,
    "order.archived": orders.archive_order,
    "inventory.set": inventory.set_inventory,
    "invoice.issued": ledger.issue_invoice,
    "payment.recorded": ledger.record_payment,
    "order.fulfillment_changed": fulfillment.change_fulfillment,
    "order.shipped": fulfillment.ship_order,
}
