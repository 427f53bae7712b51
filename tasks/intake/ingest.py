"""Ingress: decode, authenticate, deduplicate and apply envelopes; quarantine or park the rest.

A batch is one transaction. Each envelope runs in its own savepoint, so one bad message is
quarantined while the others commit together; runs of placements, acceptances, confirmations
and shipments are applied set-based.

Consumers apply batches in parallel, and a batch does not see another's uncommitted work, so
the messages about one order keep their order only as far as the ingress can see it: once a
batch parks a message about an order, its later messages about that order are parked behind
it, even if the order was committed meanwhile; and messages parked for what a batch creates
are applied after the batch's own messages, not in their middle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from models.db import intake
from models.db.commerce import Manufacturer
from models.db.machinery import InboxEntry
from models.db.orders import find_order
from models.db.sql import insert_many_ignore
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError
from tasks import log_context
from tasks.intake import locks as intake_locks
from tasks.intake import refusals
from tasks.intake.base import Awaiting
from tasks.intake.registry import BULK_HANDLERS, HANDLERS
from tasks.messages.catalogue import (
    CATALOGUE,
    MONEY_MOVING_TYPES,
    DecodedMessage,
    RejectedMessage,
    decode,
)
from tasks.messages.signing import authenticate

log = logging.getLogger("orderflow.ingress")

ALL_TYPES = frozenset(type_ for type_, _ in CATALOGUE)
Admitted = tuple[DecodedMessage, bytes]
# (type, envelopes, seconds) of each run of a batch: one envelope, or a set-based run.
Timings = list[tuple[str, int, float]]


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
    # The decoded message, when the body got that far (for metrics and log lines).
    message: DecodedMessage | None = field(default=None, compare=False, repr=False)


def ingest_batch(
    uow: UnitOfWork,
    bodies: Sequence[bytes],
    policy: IngestPolicy,
    timings: Timings | None = None,
) -> list[Outcome]:
    """Apply every body in `uow`'s transaction; the caller commits.

    Runs of messages that have a bulk handler (`order.placed`, `order.shipped`, ...) are
    applied set-based, in a fixed number of statements; a run the bulk handler declines goes
    one by one. `timings`, when given, receives how long each run took.
    """
    checked = [_check(body, policy) for body in bodies]
    # Every lock the batch needs, in the global order, before the first write.
    intake_locks.lock_batch(uow, [c for c in checked if isinstance(c, DecodedMessage)], bodies)
    admitted = [_admit(uow, body, c) for body, c in zip(bodies, checked, strict=True)]
    outcomes: list[Outcome] = []
    created: list[str] = []
    index = 0
    while index < len(admitted):
        item = admitted[index]
        if isinstance(item, Outcome):
            outcomes.append(item)
            index += 1
            continue
        run = _bulk_run(admitted, index)
        started = time.perf_counter()
        # Set-based runs do not look at `parked_for`: one by one, each message does.
        bulk = _apply_bulk(uow, run, created) if len(run) > 1 and not uow.parked_for else None
        if bulk is None:
            bulk = [_apply_admitted(uow, m, body, policy, created=created) for m, body in run]
        if timings is not None:
            timings.append((run[0][0].envelope.type, len(run), time.perf_counter() - started))
        outcomes.extend(bulk)
        index += len(run)
    _release_created(uow, created, policy)
    return outcomes


def ingest_one(uow: UnitOfWork, body: bytes, policy: IngestPolicy) -> Outcome:
    """Apply one envelope, or quarantine/park it with its reason."""
    checked = _check(body, policy)
    intake_locks.lock_batch(uow, [checked] if isinstance(checked, DecodedMessage) else [], [body])
    admitted = _admit(uow, body, checked)
    if isinstance(admitted, Outcome):
        return admitted
    created: list[str] = []
    outcome = _apply_admitted(uow, admitted[0], body, policy, created=created)
    _release_created(uow, created, policy)
    return outcome


@dataclass(frozen=True)
class _Refused:
    """Why a body is not admitted, and its message when it decoded."""

    reason: str
    detail: str
    message: DecodedMessage | None = None


def _check(body: bytes, policy: IngestPolicy) -> DecodedMessage | _Refused:
    """Decode and authenticate, without touching the database."""
    try:
        message = decode(body, policy.max_bytes)
    except RejectedMessage as rejected:
        return _Refused(rejected.reason_code.value, rejected.detail)
    try:
        authenticate(message, policy.keys, policy.signed_types | MONEY_MOVING_TYPES)
    except RejectedMessage as rejected:
        return _Refused(rejected.reason_code.value, rejected.detail, message)
    return message


def _admit(uow: UnitOfWork, body: bytes, checked: DecodedMessage | _Refused) -> Outcome | Admitted:
    """An admitted message, or its refusal quarantined at once."""
    if isinstance(checked, DecodedMessage):
        return (checked, body)
    message = checked.message
    identity = (str(message.envelope.id), message.envelope.type) if message else None
    return _quarantine(uow, body, checked.reason, checked.detail, identity, message=message)


def _bulk_run(admitted: Sequence[Outcome | Admitted], start: int) -> list[Admitted]:
    """The admitted messages from `start` on that share a bulk handler (at least one)."""
    first = admitted[start]
    assert not isinstance(first, Outcome)
    type_ = first[0].envelope.type
    run = [first]
    if type_ not in BULK_HANDLERS:
        return run
    for item in admitted[start + 1 :]:
        if isinstance(item, Outcome) or item[0].envelope.type != type_:
            break
        run.append(item)
    return run


def _apply_bulk(uow: UnitOfWork, run: list[Admitted], created: list[str]) -> list[Outcome] | None:
    """Remember and apply a run set-based, adding the keys of what it made to `created`; None
    (nothing kept) when it must go one by one."""
    # Lines logged meanwhile concern the whole run: they carry its type and size.
    token = log_context.enter({"type": run[0][0].envelope.type, "envelopes": len(run)})
    try:
        return _apply_run(uow, run, created)
    finally:
        log_context.leave(token)


def _apply_run(uow: UnitOfWork, run: list[Admitted], created: list[str]) -> list[Outcome] | None:
    now, type_ = uow.clock(), run[0][0].envelope.type
    savepoint = uow.savepoint()
    try:
        rows = [
            {"envelope_id": str(m.envelope.id), "type": type_, "received_at": now} for m, _ in run
        ]
        new = {str(i) for i in insert_many_ignore(uow.session, InboxEntry, rows, ["envelope_id"])}
        fresh, outcomes = [], []
        for message, _ in run:
            envelope_id = str(message.envelope.id)
            if envelope_id in new:
                new.discard(envelope_id)  # a repeat later in the same run is a duplicate
                fresh.append(message)
                outcomes.append(Outcome("applied", envelope_id=envelope_id, message=message))
            else:
                outcomes.append(Outcome("duplicate", envelope_id=envelope_id, message=message))
        made = BULK_HANDLERS[type_](uow, fresh) if fresh else []
        if made is None:
            savepoint.rollback()
            return None
        savepoint.commit()
    except (IntegrityError, PermanentError):
        # e.g. a concurrent consumer took a number first, or one message is refused (one by
        # one, it alone is quarantined with its reason)
        savepoint.rollback()
        return None
    created.extend(made)
    return outcomes


def _apply_admitted(
    uow: UnitOfWork,
    message: DecodedMessage,
    body: bytes,
    policy: IngestPolicy,
    *,
    created: list[str],
) -> Outcome:
    """Remember and apply one admitted message in its own savepoint, adding the key of what it
    made (if anything) to `created`."""
    envelope_id = str(message.envelope.id)
    token = log_context.enter(log_context.envelope_fields(message, envelope_id))
    try:
        return _apply_one(uow, message, envelope_id, body, policy, created=created)
    finally:
        log_context.leave(token)


def _apply_one(
    uow: UnitOfWork,
    message: DecodedMessage,
    envelope_id: str,
    body: bytes,
    policy: IngestPolicy,
    *,
    created: list[str],
) -> Outcome:
    type_ = message.envelope.type
    savepoint = uow.savepoint()
    try:
        if not intake.remember(uow.session, envelope_id, type_, uow.clock()):
            savepoint.commit()
            return Outcome("duplicate", envelope_id=envelope_id, message=message)
        made = apply(uow, message)
        savepoint.commit()
    except Awaiting as waiting:
        savepoint.rollback()
        return _park(uow, message, body, waiting, policy)
    except PermanentError as refused:
        savepoint.rollback()
        refusals.report(uow, message, envelope_id, refused)
        identity = (envelope_id, type_)
        return _quarantine(uow, body, refused.reason, refused.detail, identity, message=message)
    except SQLAlchemyError:
        raise  # the database is in trouble: the whole batch is retried later
    except Exception as bug:  # a handler bug must not stall other messages
        savepoint.rollback()
        # Where it broke, for whoever fixes it (the quarantine keeps only the error's type).
        log.warning("handler failed", exc_info=True)
        detail = f"{type(bug).__name__} in the {type_} handler"
        identity = (envelope_id, type_)
        return _quarantine(uow, body, "handler_error", detail, identity, message=message)
    if made is not None:
        created.append(made)
    return Outcome("applied", envelope_id=envelope_id, message=message)


def apply(uow: UnitOfWork, message: DecodedMessage) -> str | None:
    """Run the type's handler; a type without one is refused (and so quarantined)."""
    handler = HANDLERS.get(message.envelope.type)
    if handler is None:
        raise PermanentError("no_handler", f"{message.envelope.type} is not handled yet")
    return handler(uow, message)


def _release_created(uow: UnitOfWork, created: Sequence[str], policy: IngestPolicy) -> None:
    """Apply the messages parked for what a batch created (`order:N`, ...), after the batch's
    own messages.

    Not as soon as the order is created: another consumer may have parked a newer change to
    it (say `fulfilled`) while this batch, still uncommitted, carries the older ones
    (`processing`, `shipped`) after its `order.placed`. Released at once, the newer change
    would be an illegal move from the new order's status and be refused; released last, it
    follows them. A parked message older than the batch's arrives late instead, which the
    handlers absorb (fulfillment by `occurred_at`, forward-only confirmation, the ledger).
    """
    waiting = set(intake.keys_with_parked(uow.session, created))
    for key in created:
        if key in waiting:
            waiting.discard(key)
            release_parked(uow, key, policy)


def release_parked(uow: UnitOfWork, key: str, policy: IngestPolicy) -> None:
    """Apply, oldest first, the messages waiting for `key`, and what those unblock in turn."""
    pending = [key]
    while pending:
        released = pending.pop(0)
        uow.parked_for.discard(released)  # what this batch parked for it goes with the rest
        # Only tried, never waited for: these locks come after the batch's (see intake_locks).
        if not intake_locks.try_lock(uow, [], keys=[intake_locks.awaited_key(released)]):
            continue  # another transaction is at it: the resolver tries again
        rows = intake.take_parked(uow.session, released)
        for index, parked in enumerate(rows):
            message = _decode_parked(parked.body, policy)
            decoded = [message] if isinstance(message, DecodedMessage) else []
            if not intake_locks.try_lock(uow, decoded, bodies=[parked.body]):
                intake.repark(uow.session, rows[index:])  # busy: in order, for the resolver
                break
            if isinstance(message, RejectedMessage):  # e.g. its version was retired meanwhile
                intake.unpark_to_quarantine(
                    uow.session,
                    parked,
                    reason=message.reason_code.value,
                    detail=message.detail,
                    at=uow.clock(),
                )
                continue
            savepoint = uow.savepoint()
            try:
                created = _apply_released(uow, message, parked.envelope_id)
                savepoint.commit()
            except Awaiting as waiting:
                savepoint.rollback()  # it needs something else too: wait for that instead
                _hold(
                    uow,
                    parked.envelope_id,
                    type_=parked.type,
                    body=parked.body,
                    waiting=waiting,
                    expires_at=parked.expires_at,
                )
                continue
            except PermanentError as refused:
                savepoint.rollback()
                refusals.report(uow, message, parked.envelope_id, refused)
                intake.unpark_to_quarantine(
                    uow.session,
                    parked,
                    reason=refused.reason,
                    detail=refused.detail,
                    at=uow.clock(),
                )
                continue
            if created is not None:
                pending.append(created)


def _decode_parked(body: bytes, policy: IngestPolicy) -> DecodedMessage | RejectedMessage:
    try:
        return decode(body, max(policy.max_bytes, len(body)))
    except RejectedMessage as rejected:
        return rejected


def _apply_released(uow: UnitOfWork, message: DecodedMessage, envelope_id: str) -> str | None:
    """`apply` a message that waited, with its own fields on the lines logged meanwhile."""
    token = log_context.enter(log_context.envelope_fields(message, envelope_id))
    try:
        return apply(uow, message)
    finally:
        log_context.leave(token)


def _park(
    uow: UnitOfWork, message: DecodedMessage, body: bytes, waiting: Awaiting, policy: IngestPolicy
) -> Outcome:
    now = uow.clock()
    envelope_id, type_ = str(message.envelope.id), message.envelope.type
    # Remembered now, so a duplicate delivered while it waits is not parked twice.
    intake.remember(uow.session, envelope_id, type_, now)
    uow.parked_for.add(waiting.key)
    _hold(
        uow, envelope_id, type_=type_, body=body, waiting=waiting, expires_at=now + policy.park_for
    )
    return Outcome("parked", waiting.reason, envelope_id, message)


def _hold(
    uow: UnitOfWork,
    envelope_id: str,
    *,
    type_: str,
    body: bytes,
    waiting: Awaiting,
    expires_at: datetime,
) -> None:
    intake.park(
        uow.session,
        envelope_id=envelope_id,
        awaits=waiting.key,
        type_=type_,
        body=body,
        at=uow.clock(),
        expires_at=expires_at,
    )


def _quarantine(
    uow: UnitOfWork,
    body: bytes,
    reason: str,
    detail: str,
    identity: tuple[str, str] | None = None,
    *,
    message: DecodedMessage | None = None,
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
    return Outcome("quarantined", reason, envelope_id, message)


def quarantine_entry(uow: UnitOfWork, body: bytes, reason: str, detail: str) -> Outcome:
    """Quarantine something that never became an envelope (e.g. a malformed stream entry)."""
    return _quarantine(uow, body, reason, detail)


def resolve_parked(uow: UnitOfWork, policy: IngestPolicy, limit: int = 500) -> int:
    """Release messages whose awaited thing now exists; returns how many keys were released.

    A message can be parked by one consumer while another commits what it waits for; neither
    sees the other's uncommitted work, so this periodic re-check closes that race.
    """
    released = 0
    for key in intake.awaited_keys(uow.session, limit):
        kind, _, ident = key.partition(":")
        if exists(uow, kind, ident):
            release_parked(uow, key, policy)
            released += 1
    return released


def exists(uow: UnitOfWork, kind: str, ident: str) -> bool:
    """Whether the thing a parked message awaits is there now."""
    if kind == "order":
        return find_order(uow.session, ident) is not None
    if kind == "manufacturer":
        return uow.session.get(Manufacturer, ident) is not None
    return False
