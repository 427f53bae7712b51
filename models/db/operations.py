"""External operations (Stripe captures, cancels, refunds): committed before the call, claimed
by one worker at a time, settled after it. The key is deterministic (`order:{id}:capture`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.db.machinery import ExternalOperation
from models.db.sql import insert_ignore

MAX_ERROR_CHARS = 2000
# pending: not called yet; calling: a worker holds it; unclear: called, outcome unknown;
# done / failed / skipped: settled for good.
OPEN = ("pending", "unclear")
UNSETTLED = ("pending", "calling", "unclear")


@dataclass(frozen=True)
class OperationClaim:
    """An operation this worker may call out for now."""

    operation_id: int
    key: str
    kind: str
    order_id: int
    amount: int | None
    currency: str | None
    attempt: int  # 1 on the first call; later calls read the real state first
    created_at: datetime


def create(
    session: Session,
    *,
    key: str,
    kind: str,
    order_id: int,
    amount: int | None,
    currency: str | None,
    at: datetime,
) -> int | None:
    """Commit-to-be row for a call out; its id, or None when the key already exists."""
    row = {"key": key, "kind": kind, "order_id": order_id, "amount": amount,
           "currency": currency, "status": "pending", "attempts": 0, "result": {},
           "created_at": at, "updated_at": at}  # fmt: skip
    new_id = insert_ignore(session, ExternalOperation, row, ["key"])
    return int(new_id) if new_id is not None else None


def find(session: Session, key: str) -> ExternalOperation | None:
    """The operation with this key."""
    return session.scalars(select(ExternalOperation).where(ExternalOperation.key == key)).first()


def claim(
    session: Session, operation_id: int, now: datetime, stale: timedelta
) -> OperationClaim | None:
    """Take the right to call: open, or stuck in `calling` longer than `stale` (its worker
    died mid-call, so the outcome is unclear). None when settled or held by a live worker."""
    row = session.execute(
        update(ExternalOperation)
        .where(
            ExternalOperation.id == operation_id,
            or_(
                ExternalOperation.status.in_(OPEN),
                (ExternalOperation.status == "calling")
                & (ExternalOperation.updated_at < now - stale),
            ),
        )
        .values(status="calling", attempts=ExternalOperation.attempts + 1, updated_at=now)
        .returning(
            ExternalOperation.id, ExternalOperation.key, ExternalOperation.kind,
            ExternalOperation.order_id, ExternalOperation.amount, ExternalOperation.currency,
            ExternalOperation.attempts, ExternalOperation.created_at,
        )
    ).one_or_none()  # fmt: skip
    if row is None:
        return None
    return OperationClaim(int(row[0]), row[1], row[2], int(row[3] or 0), row[4], row[5],
                          int(row[6]), row[7])  # fmt: skip


def status_of(session: Session, operation_id: int) -> str | None:
    """The operation's status (None when it does not exist)."""
    return session.scalar(
        select(ExternalOperation.status).where(ExternalOperation.id == operation_id)
    )


def settle(
    session: Session,
    operation_id: int,
    *,
    status: str,
    at: datetime,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome once: a final status (done, failed, skipped) is never changed.

    An operation may settle without being claimed: a webhook or a cancel can learn the outcome
    of a capture first; the worker that called then finds it settled and records nothing.
    """
    values: dict[str, Any] = {"status": status, "updated_at": at}
    if result is not None:
        values["result"] = result
    if error is not None:
        values["last_error"] = error[:MAX_ERROR_CHARS]
    done = session.execute(
        update(ExternalOperation)
        .where(ExternalOperation.id == operation_id, ExternalOperation.status.in_(UNSETTLED))
        .values(**values)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]
