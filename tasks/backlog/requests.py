"""`paid_backlog.requested`: start a bulk paid-backlog job (its chunks run on the bulk queue)."""

from __future__ import annotations

from models.db.uow import UnitOfWork
from tasks.backlog import paid as paid_backlog
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.backlog import PaidBacklogRequestedV1


def request_paid_backlog(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Create the job and stage its chunks; a repeat of the envelope is stopped by the inbox, a
    new envelope asking the same creates nothing again (every order `already_created`)."""
    data = message.data_as(PaidBacklogRequestedV1)
    paid_backlog.start_job(
        uow,
        order_numbers=data.order_numbers,
        dry_run=data.dry_run,
        source="message",
        envelope_id=str(message.envelope.id),
    )
