"""Where inbound messages land besides their effect: inbox, quarantine and parking."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from models.db.sql import dialect_insert, insert_ignore, table_of

MAX_DETAIL_CHARS = 2000


def remember(session: Session, envelope_id: str, type_: str, at: datetime) -> bool:
    """Record a consumed envelope id; False when it was consumed before."""
    row = {"envelope_id": envelope_id, "type": type_, "received_at": at}
    return insert_ignore(session, InboxEntry, row, ["envelope_id"]) is not None


def forget(session: Session, envelope_id: str) -> None:
    """Drop an envelope id from the inbox (it was quarantined after being remembered)."""
    session.execute(delete(InboxEntry).where(InboxEntry.envelope_id == envelope_id))


def quarantine(
    session: Session,
    *,
    body: bytes,
    reason: str,
    detail: str,
    at: datetime,
    envelope_id: str | None = None,
    type_: str | None = None,
) -> bool:
    """Keep a refused message with its reason; nothing is lost and it can be replayed.

    The same bytes already held are not kept twice (a redelivered stream entry, or a batch
    another consumer took over): the held record counts one more delivery. True when new.
    """
    row = {
        "envelope_id": envelope_id,
        "type": type_,
        "reason": reason,
        "detail": detail[:MAX_DETAIL_CHARS],
        "body": body,
        "received_at": at,
        "status": "held",
        "fingerprint": hashlib.sha256(body).hexdigest(),
        "deliveries": 1,
    }
    stmt = dialect_insert(session, table_of(QuarantinedMessage))
    stmt = stmt.on_conflict_do_update(
        index_elements=["fingerprint"],
        index_where=text("status = 'held'"),
        set_={"deliveries": stmt.table.c.deliveries + 1},
    ).returning(stmt.table.c.deliveries)
    return bool(session.execute(stmt, row).scalar_one() == 1)


def park(
    session: Session,
    *,
    envelope_id: str,
    awaits: str,
    type_: str,
    body: bytes,
    at: datetime,
    expires_at: datetime,
) -> None:
    """Hold a valid message until what it `awaits` (e.g. `order:M1`) exists."""
    session.add(
        ParkedMessage(
            envelope_id=envelope_id,
            awaits=awaits,
            type=type_,
            body=body,
            parked_at=at,
            expires_at=expires_at,
        )
    )


def repark(session: Session, rows: Sequence[ParkedMessage]) -> None:
    """Put messages taken from parking back, in their order, as they were."""
    session.add_all(
        ParkedMessage(
            envelope_id=r.envelope_id,
            awaits=r.awaits,
            type=r.type,
            body=r.body,
            parked_at=r.parked_at,
            expires_at=r.expires_at,
        )
        for r in rows
    )


def unpark_to_quarantine(
    session: Session, parked: ParkedMessage, *, reason: str, detail: str, at: datetime
) -> None:
    """Quarantine a message taken from parking, and drop it from the inbox so that a replay
    from the quarantine applies it instead of being taken for a duplicate."""
    forget(session, parked.envelope_id)
    quarantine(
        session,
        body=parked.body,
        reason=reason,
        detail=detail,
        at=at,
        envelope_id=parked.envelope_id,
        type_=parked.type,
    )


def keys_with_parked(session: Session, keys: Sequence[str]) -> list[str]:
    """Which of these keys have messages waiting (one query for a whole batch)."""
    if not keys:
        return []
    query = select(ParkedMessage.awaits).where(ParkedMessage.awaits.in_(keys))
    return sorted(set(session.scalars(query.distinct())))


def awaited_keys(session: Session, limit: int) -> list[str]:
    """Distinct keys that parked messages wait for."""
    query = select(ParkedMessage.awaits).distinct().order_by(ParkedMessage.awaits).limit(limit)
    return list(session.scalars(query))


def take_parked(session: Session, awaits: str) -> Sequence[ParkedMessage]:
    """Remove and return the messages waiting for `awaits`, oldest first."""
    rows = session.scalars(
        select(ParkedMessage)
        .where(ParkedMessage.awaits == awaits)
        .order_by(ParkedMessage.id)
        .with_for_update()
    ).all()
    if rows:
        session.execute(delete(ParkedMessage).where(ParkedMessage.id.in_([r.id for r in rows])))
    return rows


def take_expired_parked(session: Session, now: datetime, limit: int) -> Sequence[ParkedMessage]:
    """Remove and return parked messages whose wait is over."""
    rows = session.scalars(
        select(ParkedMessage)
        .where(ParkedMessage.expires_at <= now)
        .order_by(ParkedMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(delete(ParkedMessage).where(ParkedMessage.id.in_([r.id for r in rows])))
    return rows
