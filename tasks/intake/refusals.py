"""Business refusals: a valid message the rules say no to is put on its order's timeline and
reported to producers as a `message.refused` event on the egress stream (SPEC 2.1)."""

from __future__ import annotations

from models.db.orders import find_order, record
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError
from tasks.messages.catalogue import DecodedMessage
from tasks.outbox import egress

REFUSED_EVENT = "message.refused"
# Not decisions about the message but faults of ours: quarantined, never reported as refusals.
NOT_REFUSALS = frozenset({"handler_error", "no_handler", "wrong_handler"})


def report(
    uow: UnitOfWork, message: DecodedMessage, envelope_id: str, error: PermanentError
) -> bool:
    """Record and publish one refusal (once per envelope); False for faults that are ours."""
    if error.reason in NOT_REFUSALS:
        return False
    type_ = message.envelope.type
    number = getattr(message.data, "number", None)
    order = find_order(uow.session, number) if isinstance(number, str) else None
    if order is not None:
        record(
            uow.session,
            order,
            uow.clock(),
            REFUSED_EVENT,
            f"{type_} refused: {error.reason}" + (f": {error.detail}" if error.detail else ""),
            details={"type": type_, "reason": error.reason},
            envelope_id=envelope_id,
        )
    data = {
        "envelope_id": envelope_id,
        "type": type_,
        "number": number,
        "reason": error.reason,
        "detail": error.detail,
    }
    egress.emit(uow, REFUSED_EVENT, f"refused:{envelope_id}", data)
    return True
