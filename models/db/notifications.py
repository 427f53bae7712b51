"""Notification rows: staged with their cause, claimed before sending, settled after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.db.machinery import Notification
from models.db.sql import insert_ignore, insert_many_ignore

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    """A notification this worker may send now."""

    notification_id: int
    key: str
    channel: str
    recipient: str
    template: str
    context: dict[str, Any]
    attempt: int


def add(
    session: Session,
    *,
    key: str,
    order_id: int | None,
    kind: str,
    recipient: str,
    template: str,
    context: dict[str, Any],
    at: datetime,
    channel: str = "email",
) -> int | None:
    """Insert one notification unless its key exists; its id when this call created it."""
    row = {
        "key": key,
        "order_id": order_id,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "context": context,
        "status": "pending",
        "attempts": 0,
        "created_at": at,
    }
    new_id = insert_ignore(session, Notification, row, ["key"])
    return int(new_id) if new_id is not None else None


def add_many(session: Session, rows: list[dict[str, Any]], at: datetime) -> list[int]:
    """Insert notifications (key, order_id, kind, channel, recipient, template, context) whose
    keys are new; the ids of those created."""
    full = [{**row, "status": "pending", "attempts": 0, "created_at": at} for row in rows]
    return [int(i) for i in insert_many_ignore(session, Notification, full, ["key"])]


def claim(session: Session, notification_id: int, now: datetime, stale: timedelta) -> Claim | None:
    """Take the right to send: pending, or stuck in `sending` longer than `stale` (its sender
    died). None when it is sent, failed, or being sent right now by someone else."""
    row = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            or_(
                Notification.status == "pending",
                (Notification.status == "sending") & (Notification.claimed_at < now - stale),
            ),
        )
        .values(status="sending", claimed_at=now, attempts=Notification.attempts + 1)
        .returning(
            Notification.id,
            Notification.key,
            Notification.channel,
            Notification.recipient,
            Notification.template,
            Notification.context,
            Notification.attempts,
        )
    ).first()
    if row is None:
        return None
    return Claim(row[0], row[1], row[2], row[3], row[4], dict(row[5]), row[6])


def status_of(session: Session, notification_id: int) -> str | None:
    """The notification's status."""
    return session.scalar(select(Notification.status).where(Notification.id == notification_id))


def settle(
    session: Session,
    notification_id: int,
    *,
    status: str,
    at: datetime,
    error: str | None = None,
    message_id: str | None = None,
) -> None:
    """Record the outcome of a send: sent, failed (permanent) or pending (try again)."""
    values: dict[str, Any] = {"status": status, "last_error": error and error[:MAX_ERROR_CHARS]}
    if status == "sent":
        values.update(sent_at=at, message_id=message_id)
    session.execute(update(Notification).where(Notification.id == notification_id).values(values))


def for_order(session: Session, order_id: int) -> Sequence[Notification]:
    """An order's notifications, oldest first."""
    query = select(Notification).where(Notification.order_id == order_id)
    return session.scalars(query.order_by(Notification.id)).all()
