"""`manufacturer.upserted`: create or update an OEM channel."""

from __future__ import annotations

from models.db.commerce import Manufacturer
from models.db.uow import UnitOfWork
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.manufacturer import ManufacturerUpsertedV1


def upsert_manufacturer(uow: UnitOfWork, message: DecodedMessage) -> str:
    """Store the manufacturer; orders placed later use its new SLA (existing deadlines stay)."""
    data = message.data_as(ManufacturerUpsertedV1)
    row = uow.session.get(Manufacturer, data.id, with_for_update=True)
    if row is None:
        row = Manufacturer(id=data.id)
        uow.session.add(row)
    row.name = data.name
    row.sla_business_days = data.sla_business_days
    row.timezone = data.timezone
    row.holiday_country = data.holiday_country
    row.holiday_subdivision = data.holiday_subdivision
    row.cutoff_hour = data.cutoff_hour
    row.notify_email = data.notify_email
    row.notify_webhook_url = str(data.notify_webhook_url) if data.notify_webhook_url else None
    row.updated_at = uow.clock()
    return f"manufacturer:{data.id}"
