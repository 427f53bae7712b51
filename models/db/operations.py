"""External operations (Stripe captures, cancels, refunds): committed before the call, claimed
by one worker at a time, settled after it. The key is deterministic (`order:{id}:capture`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.db.machinery import ExternalOperation
from models.db.sql import dialect_insert, table_of

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


def row(
    *,
    key: str,
    kind: str,
    order_id: int,
    amount: int | None,
    currency: str | None,
    at: datetime,
) -> dict[str, Any]:
    """A new operation's row, for `create_many`."""
    return {
        "key": key,
        "kind": kind,
        "order_id": order_id,
        "amount": amount,
        "currency": currency,
        "status": "pending",
        "attempts": 0,
        "result": {},
        "created_at": at,
        "updated_at": at,
    }


def create(session: Session, new: dict[str, Any]) -> int | None:
    """Insert one operation (a `row`); its id, or None when its key already exists."""
    return create_many(session, [new]).get(new["key"])


def create_many(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert operation rows (one statement); the id of each whose key was new, by key."""
    if not rows:
        return {}
    table = table_of(ExternalOperation)
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.key, table.c.id)
    )
    return {str(key): int(new_id) for key, new_id in session.execute(stmt, rows)}


def find(session: Session, key: str) -> ExternalOperation | None:
    """The operation with this key."""
    return session.scalars(select(ExternalOperation).where(ExternalOperation.key == key)).first()


def claim(
    session: Session, operation_ids: Sequence[int], now: datetime, stale: timedelta
) -> list[OperationClaim]:
    """Take the right to call, for each operation that is open, or stuck in `calling` longer
    than `stale` (its worker died mid-call, so the outcome is unclear). Settled ones and those
    held by a live worker are left out."""
    rows = session.execute(
        update(ExternalOperation)
        .where(
            ExternalOperation.id.in_(operation_ids),
            or_(
                ExternalOperation.status.in_(OPEN),
                (ExternalOperation.status == "calling")
                & (ExternalOperation.updated_at < now - stale),
            ),
        )
        .values(status="calling", attempts=ExternalOperation.attempts + 1, updated_at=now)
        .returning(
            ExternalOperation.id,
            ExternalOperation.key,
            ExternalOperation.kind,
            ExternalOperation.order_id,
            ExternalOperation.amount,
            ExternalOperation.currency,
            ExternalOperation.attempts,
            ExternalOperation.created_at,
        )
    ).all()
    claims = [
        OperationClaim(
            int(row[0]), row[1], row[2], int(row[3] or 0), row[4], row[5], int(row[6]), row[7]
        )
        for row in rows
    ]
    return sorted(claims, key=lambda c: c.operation_id)


def any_calling(session: Session, operation_ids: Sequence[int]) -> bool:
    """Whether a live worker holds one of these operations (it is `calling`)."""
    query = select(ExternalOperation.id).where(
        ExternalOperation.id.in_(operation_ids), ExternalOperation.status == "calling"
    )
    return session.scalars(query.limit(1)).first() is not None


def status_of(session: Session, operation_id: int) -> str | None:
    """The operation's status (None when it does not exist)."""
    return session.scalar(
        select(ExternalOperation.status).where(ExternalOperation.id == operation_id)
    )


def lock_unsettled(session: Session, operation_ids: Sequence[int]) -> dict[int, ExternalOperation]:
    """The operations not settled yet, row-locked in id order, by id."""
    query = (
        select(ExternalOperation)
        .where(ExternalOperation.id.in_(operation_ids), ExternalOperation.status.in_(UNSETTLED))
        .order_by(ExternalOperation.id)
        .with_for_update()
    )
    return {op.id: op for op in session.scalars(query)}


def mark(
    op: ExternalOperation, *, status: str, at: datetime, result: dict[str, Any] | None = None
) -> None:
    """Settle an operation locked by `lock_unsettled` (written with the session's flush)."""
    op.status, op.updated_at = status, at
    if result is not None:
        op.result = result


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
