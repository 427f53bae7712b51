"""Ingress: decode, authenticate, deduplicate and apply envelopes; quarantine or park the rest.

Each envelope runs in its own savepoint inside the batch's transaction, so one bad message is
quarantined while the others commit together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from models.db import intake
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError
from tasks.handlers.base import AwaitingOrder
from tasks.handlers.registry import HANDLERS
from tasks.messages.catalogue import (
    CATALOGUE,
    MONEY_MOVING_TYPES,
    DecodedMessage,
    RejectedMessage,
    decode,
)
from tasks.messages.signing import authenticate

ALL_TYPES = frozenset(type_ for type_, _ in CATALOGUE)


@dataclass(frozen=True)
class IngestPolicy:
    """What the ingress accepts."""

    max_bytes: int
    keys: Mapping[str, bytes]
    accept_unsigned: bool
    park_for: timedelta

    @property
    def signed_types(self) -> frozenset[str]:
        """Types refused without a signature (money movers always are, via `authenticate`)."""
        return frozenset() if self.accept_unsigned else ALL_TYPES


@dataclass(frozen=True)
class Outcome:
    """What happened to one envelope."""

    result: str  # applied | duplicate | parked | quarantined
    reason: str = ""
    envelope_id: str | None = None


def ingest_batch(uow: UnitOfWork, bodies: Sequence[bytes], policy: IngestPolicy) -> list[Outcome]:
    """Apply every body in `uow`'s transaction; the caller commits."""
    return [ingest_one(uow, body, policy) for body in bodies]


def ingest_one(uow: UnitOfWork, body: bytes, policy: IngestPolicy) -> Outcome:
    """Apply one envelope, or quarantine/park it with its reason."""
    try:
        message = decode(body, policy.max_bytes)
    except RejectedMessage as rejected:
        return _quarantine(uow, body, rejected.reason_code.value, rejected.detail)
    envelope_id, type_ = str(message.envelope.id), message.envelope.type
    try:
        authenticate(message, policy.keys, policy.signed_types | MONEY_MOVING_TYPES)
    except RejectedMessage as rejected:
        identity = (envelope_id, type_)
        return _quarantine(uow, body, rejected.reason_code.value, rejected.detail, identity)
    savepoint = uow.session.begin_nested()
    try:
        if not intake.remember(uow.session, envelope_id, type_, uow.clock()):
            savepoint.commit()
            return Outcome("duplicate", envelope_id=envelope_id)
        created = apply(uow, message)
        savepoint.commit()
    except AwaitingOrder as waiting:
        savepoint.rollback()
        return _park(uow, message, body, waiting.number, policy)
    except PermanentError as refused:
        savepoint.rollback()
        return _quarantine(uow, body, refused.reason, refused.detail, (envelope_id, type_))
    except SQLAlchemyError:
        raise  # the database is in trouble: the whole batch is retried later
    except Exception as bug:  # noqa: BLE001 - a handler bug must not stall other messages
        savepoint.rollback()
        detail = f"{type(bug).__name__} in the {type_} handler"
        return _quarantine(uow, body, "handler_error", detail, (envelope_id, type_))
    if created is not None:
        release_parked(uow, created, policy)
    return Outcome("applied", envelope_id=envelope_id)


def apply(uow: UnitOfWork, message: DecodedMessage) -> str | None:
    """Run the type's handler; a type without one is refused (and so quarantined)."""
    handler = HANDLERS.get(message.envelope.type)
    if handler is None:
        raise PermanentError("no_handler", f"{message.envelope.type} is not handled yet")
    return handler(uow, message)


def release_parked(uow: UnitOfWork, number: str, policy: IngestPolicy) -> None:
    """Apply, oldest first, the messages that were waiting for order `number`."""
    for parked in intake.take_parked(uow.session, number):
        message = decode(parked.body, max(policy.max_bytes, len(parked.body)))
        savepoint = uow.session.begin_nested()
        try:
            apply(uow, message)
            savepoint.commit()
        except (PermanentError, AwaitingOrder) as refused:
            savepoint.rollback()
            # Forgotten by the inbox, so that a replay from the quarantine can apply it.
            intake.forget(uow.session, parked.envelope_id)
            _quarantine(
                uow, parked.body, refused.reason, refused.detail, (parked.envelope_id, parked.type)
            )


def _park(
    uow: UnitOfWork, message: DecodedMessage, body: bytes, number: str, policy: IngestPolicy
) -> Outcome:
    now = uow.clock()
    envelope_id, type_ = str(message.envelope.id), message.envelope.type
    # Remembered now, so a duplicate delivered while it waits is not parked twice.
    intake.remember(uow.session, envelope_id, type_, now)
    intake.park(
        uow.session,
        envelope_id=envelope_id,
        order_number=number,
        type_=type_,
        body=body,
        at=now,
        expires_at=now + policy.park_for,
    )
    return Outcome("parked", "awaiting_order", envelope_id)


def _quarantine(
    uow: UnitOfWork,
    body: bytes,
    reason: str,
    detail: str,
    identity: tuple[str, str] | None = None,
) -> Outcome:
    envelope_id, type_ = identity if identity else (None, None)
    intake.quarantine(
        uow.session,
        body=body,
        reason=reason,
        detail=detail,
        at=uow.clock(),
        envelope_id=envelope_id,
        type_=type_,
    )
    return Outcome("quarantined", reason, envelope_id)


def quarantine_entry(uow: UnitOfWork, body: bytes, reason: str, detail: str) -> Outcome:
    """Quarantine something that never became an envelope (e.g. a malformed stream entry)."""
    return _quarantine(uow, body, reason, detail)
