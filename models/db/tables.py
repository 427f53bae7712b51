"""Every table, importable from one place (Alembic reads `Base.metadata` from here)."""

from __future__ import annotations

from models.db.base import Base
from models.db.bulk_jobs import BulkJob, BulkJobResult
from models.db.commerce import (
    BacklogSku,
    Customer,
    DeliveryNote,
    DeliveryNoteLine,
    Inventory,
    Invoice,
    Manufacturer,
    Order,
    OrderLine,
    Payment,
    Restock,
    RestockDecision,
    StockReservation,
)
from models.db.machinery import (
    ExternalOperation,
    InboxEntry,
    Notification,
    OutboxJob,
    ParkedMessage,
    ProbeEffect,
    QuarantinedMessage,
    SchedulerRun,
    TimelineEvent,
)

__all__ = [
    "BacklogSku",
    "Base",
    "BulkJob",
    "BulkJobResult",
    "Customer",
    "DeliveryNote",
    "DeliveryNoteLine",
    "ExternalOperation",
    "InboxEntry",
    "Inventory",
    "Invoice",
    "Manufacturer",
    "Notification",
    "Order",
    "OrderLine",
    "OutboxJob",
    "ParkedMessage",
    "Payment",
    "ProbeEffect",
    "QuarantinedMessage",
    "Restock",
    "RestockDecision",
    "SchedulerRun",
    "StockReservation",
    "TimelineEvent",
]
