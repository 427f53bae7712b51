"""Version-1 message data models, one per type of SPEC 2.1, grouped by area."""

from __future__ import annotations

from tasks.messages.v1.backlog import DeliveryNoteRequestedV1, PaidBacklogRequestedV1
from tasks.messages.v1.common import FulfillmentStatus, MessageData, PaymentMethod
from tasks.messages.v1.fulfillment import (
    OrderArchivedV1,
    OrderCancelledV1,
    OrderFulfillmentChangedV1,
    OrderRefundRequestedV1,
    OrderShippedV1,
    OrderSplitRequestedV1,
)
from tasks.messages.v1.inventory import InventoryReceivedV1, InventorySetV1
from tasks.messages.v1.ledger import InvoiceIssuedV1, PaymentRecordedV1
from tasks.messages.v1.manufacturer import ManufacturerUpsertedV1
from tasks.messages.v1.orders import (
    CustomerV1,
    OrderAcceptedV1,
    OrderConfirmedV1,
    OrderLinesChangedV1,
    OrderLineV1,
    OrderPlacedV1,
)
from tasks.messages.v1.stripe_event import StripeEventV1

# In SPEC 2.1 order; the catalogue and the docs follow it.
V1_MODELS: tuple[type[MessageData], ...] = (
    ManufacturerUpsertedV1,
    OrderPlacedV1,
    OrderAcceptedV1,
    OrderConfirmedV1,
    OrderLinesChangedV1,
    OrderShippedV1,
    OrderFulfillmentChangedV1,
    OrderSplitRequestedV1,
    OrderCancelledV1,
    OrderRefundRequestedV1,
    OrderArchivedV1,
    InvoiceIssuedV1,
    PaymentRecordedV1,
    InventorySetV1,
    InventoryReceivedV1,
    PaidBacklogRequestedV1,
    DeliveryNoteRequestedV1,
    StripeEventV1,
)

__all__ = [
    "V1_MODELS",
    "CustomerV1",
    "DeliveryNoteRequestedV1",
    "FulfillmentStatus",
    "InventoryReceivedV1",
    "InventorySetV1",
    "InvoiceIssuedV1",
    "ManufacturerUpsertedV1",
    "MessageData",
    "OrderAcceptedV1",
    "OrderArchivedV1",
    "OrderCancelledV1",
    "OrderConfirmedV1",
    "OrderFulfillmentChangedV1",
    "OrderLineV1",
    "OrderLinesChangedV1",
    "OrderPlacedV1",
    "OrderRefundRequestedV1",
    "OrderShippedV1",
    "OrderSplitRequestedV1",
    "PaidBacklogRequestedV1",
    "PaymentMethod",
    "PaymentRecordedV1",
    "StripeEventV1",
]
