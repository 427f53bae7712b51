"""`delivery_note.requested`: consume backlog SKUs (paid first) and record what to bill."""

from __future__ import annotations

from models.db import backlog
from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.delivery import billed, plan_delivery
from tasks.intake.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.backlog import DeliveryNoteRequestedV1


def make_delivery_note(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Refused (`exceeds_backlog`, nothing changed) when the backlog cannot cover a line."""
    data = message.data_as(DeliveryNoteRequestedV1)
    session, now = uow.session, uow.clock()
    order = require_order(uow, data.number)
    # Orders confirmed before backlog existed, and backorders (confirmed with their parent).
    backlog.ensure_regular(session, order, now)
    takes = plan_delivery(
        {line.sku: line.quantity for line in data.lines}, backlog.open_pieces(session, order.id)
    )
    note = backlog.add_note(
        session,
        order.id,
        takes,
        reference=data.reference,
        envelope_id=str(message.envelope.id),
        at=now,
    )
    paid = sum(t.quantity for t in takes if not t.billable)
    label = backlog.note_label(note.id, note.reference)
    record(
        session,
        order,
        now,
        "delivery_note.requested",
        f"delivery note {label}: {sum(t.quantity for t in takes)} units, {paid} paid in "
        f"advance; {billed(takes)} {order.currency} to invoice",
        details={"note_id": note.id, "reference": data.reference},
        envelope_id=str(message.envelope.id),
    )
