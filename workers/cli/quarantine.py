"""`orderflow quarantine list|show|replay|drop`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.machinery import QuarantinedMessage
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

PREVIEW_CHARS = 400


def held(
    session: Session, reason: str | None = None, limit: int = 100
) -> Sequence[QuarantinedMessage]:
    """Held quarantine records, newest first."""
    query = select(QuarantinedMessage).where(QuarantinedMessage.status == "held")
    if reason:
        query = query.where(QuarantinedMessage.reason == reason)
    return session.scalars(query.order_by(QuarantinedMessage.id.desc()).limit(limit)).all()


def preview(body: bytes) -> str:
    """The start of a body, printable."""
    text = body[:PREVIEW_CHARS].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > PREVIEW_CHARS else "")


def _held_locked(session: Session, ids: Sequence[int]) -> Sequence[QuarantinedMessage]:
    return session.scalars(
        select(QuarantinedMessage)
        .where(QuarantinedMessage.id.in_(ids), QuarantinedMessage.status == "held")
        .with_for_update()
    ).all()


def replay(session: Session, client: redis.Redis, ids: Sequence[int], now: datetime) -> int:
    """Put held records back on the ingress stream as they were received; returns how many."""
    rows = _held_locked(session, ids)
    for row in rows:
        client.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: row.body})
        row.status = "replayed"
        row.replayed_at = now
    return len(rows)


def drop(session: Session, ids: Sequence[int]) -> int:
    """Mark held records dropped (kept for the record, never replayed)."""
    rows = _held_locked(session, ids)
    for row in rows:
        row.status = "dropped"
    return len(rows)
