"""Named read-only statements behind `orderflow status`: unsettled Stripe operations, card holds
about to lapse, the outbox backlog, parked messages and the scheduler's claimed ticks."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.db.commerce import Order
from models.db.machinery import (
    ExternalOperation,
    OutboxJob,
    ParkedMessage,
    QuarantinedMessage,
    SchedulerRun,
)
from models.db.operations import UNSETTLED

HELD = "held"  # models.domain.ledger.HoldState.HELD, as stored


class OperationCount(NamedTuple):
    """Unsettled operations of one kind and status."""

    kind: str
    status: str
    open: int
    oldest_created_at: datetime


class OpenOperation(NamedTuple):
    """One unsettled operation and its order."""

    number: str | None
    kind: str
    status: str
    attempts: int
    created_at: datetime
    last_error: str | None


class ExpiringHold(NamedTuple):
    """A card hold still held whose authorization lapses soon (or already did, unmarked)."""

    number: str
    capture_before: datetime
    fulfillment_status: str
    total: int
    currency: str


class OutboxBacklog(NamedTuple):
    """Pending outbox jobs: how many per job, the oldest, how many are older than a limit."""

    pending_by_job: dict[str, int]
    oldest_created_at: datetime | None
    stuck: int
    failed: int


def unsettled_operations(session: Session) -> list[OperationCount]:
    """Operations not settled yet (pending, calling, unclear), per kind and status."""
    query = (
        select(
            ExternalOperation.kind,
            ExternalOperation.status,
            func.count(),
            func.min(ExternalOperation.created_at),
        )
        .where(ExternalOperation.status.in_(UNSETTLED))
        .group_by(ExternalOperation.kind, ExternalOperation.status)
        .order_by(ExternalOperation.kind, ExternalOperation.status)
    )
    return [OperationCount(k, s, int(n), at) for k, s, n, at in session.execute(query)]


def open_operations(session: Session, before: datetime, limit: int) -> list[OpenOperation]:
    """Unsettled operations created before `before`, oldest first."""
    query = (
        select(
            Order.number,
            ExternalOperation.kind,
            ExternalOperation.status,
            ExternalOperation.attempts,
            ExternalOperation.created_at,
            ExternalOperation.last_error,
        )
        .outerjoin(Order, Order.id == ExternalOperation.order_id)
        .where(ExternalOperation.status.in_(UNSETTLED), ExternalOperation.created_at <= before)
        .order_by(ExternalOperation.created_at, ExternalOperation.id)
        .limit(limit)
    )
    return [OpenOperation(*row) for row in session.execute(query)]


def count_open_operations(session: Session, before: datetime) -> int:
    """How many unsettled operations were created before `before`."""
    query = select(func.count()).where(
        ExternalOperation.status.in_(UNSETTLED), ExternalOperation.created_at <= before
    )
    return int(session.scalar(query) or 0)


class FailedCapture(NamedTuple):
    """An order family whose capture failed, waiting for someone to act."""

    number: str
    reason: str
    since: datetime


def failed_captures(session: Session, limit: int) -> list[FailedCapture]:
    """Orders holding a failed capture, oldest change first."""
    query = (
        select(Order.number, Order.capture_failure, Order.updated_at)
        .where(Order.capture_failure.is_not(None))
        .order_by(Order.updated_at, Order.id)
        .limit(limit)
    )
    return [FailedCapture(n, str(r), at) for n, r, at in session.execute(query)]


def count_failed_captures(session: Session) -> int:
    """How many orders hold a failed capture."""
    query = select(func.count()).where(Order.capture_failure.is_not(None))
    return int(session.scalar(query) or 0)


def expiring_holds(session: Session, until: datetime, limit: int) -> list[ExpiringHold]:
    """Held card holds lapsing before `until`, soonest first."""
    query = (
        select(
            Order.number,
            Order.capture_before,
            Order.fulfillment_status,
            Order.total,
            Order.currency,
        )
        .where(Order.hold_state == HELD, Order.capture_before <= until)
        .order_by(Order.capture_before, Order.id)
        .limit(limit)
    )
    return [
        ExpiringHold(number, before, fulfillment, total, currency)
        for number, before, fulfillment, total, currency in session.execute(query)
        if before is not None
    ]


def count_expiring_holds(session: Session, until: datetime) -> int:
    """How many held card holds lapse before `until`."""
    query = select(func.count()).where(Order.hold_state == HELD, Order.capture_before <= until)
    return int(session.scalar(query) or 0)


def outbox_backlog(session: Session, stuck_before: datetime) -> OutboxBacklog:
    """Pending jobs per job name, the oldest one's creation, those created before
    `stuck_before`, and how many jobs failed for good."""
    pending = OutboxJob.status == "pending"
    by_job = session.execute(
        select(OutboxJob.job, func.count()).where(pending).group_by(OutboxJob.job)
    ).all()
    oldest = session.scalar(select(func.min(OutboxJob.created_at)).where(pending))
    stuck = session.scalar(
        select(func.count()).where(pending, OutboxJob.created_at <= stuck_before)
    )
    failed = session.scalar(select(func.count()).where(OutboxJob.status == "failed"))
    return OutboxBacklog(
        {job: int(n) for job, n in sorted(by_job)}, oldest, int(stuck or 0), int(failed or 0)
    )


def parked_summary(session: Session) -> tuple[int, datetime | None]:
    """How many messages are parked, and when the next one's wait ends."""
    count, expiry = session.execute(
        select(func.count(), func.min(ParkedMessage.expires_at)).select_from(ParkedMessage)
    ).one()
    return int(count or 0), expiry


def last_claimed_ticks(session: Session) -> dict[str, datetime]:
    """When each exclusive job's newest tick was claimed (scheduler_runs keeps a week)."""
    query = select(SchedulerRun.job, func.max(SchedulerRun.started_at)).group_by(SchedulerRun.job)
    return {str(job): at for job, at in session.execute(query)}


def counts_by_reason(session: Session) -> dict[str, int]:
    """How many held records per reason."""
    rows = session.execute(
        select(QuarantinedMessage.reason, func.count())
        .where(QuarantinedMessage.status == "held")
        .group_by(QuarantinedMessage.reason)
    ).all()
    return {reason: int(count) for reason, count in rows}
