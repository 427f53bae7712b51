"""Bulk jobs (paid-backlog creation): the job record with its progress, its per-order results,
and the statements that keep them.

A chunk's results and its progress are written in the chunk's own transaction (the one that
marks its outbox job done), so a chunk counts once however often it is delivered or re-run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, case, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.db.base import Base, Id, UTCDateTime
from models.db.machinery import OutboxJob
from models.db.sql import insert_many_ignore

RUNNING, DONE = "running", "done"
RESULTS_CHUNK = 1000


class BulkJob(Base):
    """One bulk request: what was asked, how far it got, and what it did."""

    __tablename__ = "bulk_jobs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    dry_run: Mapped[bool]
    source: Mapped[str] = mapped_column(String(16))  # message | cli
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))  # running | done
    chunks_total: Mapped[int] = mapped_column(default=0)
    chunks_done: Mapped[int] = mapped_column(default=0)
    orders_total: Mapped[int] = mapped_column(default=0)
    orders_done: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)  # orders given paid backlog (or would be)
    skus_created: Mapped[int] = mapped_column(default=0)  # paid backlog SKUs (or would be)
    already_created: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    unknown: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BulkJobResult(Base):
    """What a bulk job did with one order; unique per (job, order number)."""

    __tablename__ = "bulk_job_results"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("bulk_jobs.id"))
    number: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(String(200), default="")  # comma-separated
    skus: Mapped[int] = mapped_column(default=0)
    __table_args__ = (UniqueConstraint("job_id", "number"),)


@dataclass(frozen=True)
class ChunkTally:
    """What one chunk adds to its job's totals."""

    orders: int
    created: int
    skus_created: int
    already_created: int
    skipped: int
    unknown: int


def create_job(
    session: Session,
    request: dict[str, Any],
    *,
    source: str,
    envelope_id: str | None,
    at: datetime,
) -> BulkJob:
    """A new paid-backlog job, running until its chunks are counted in."""
    job = BulkJob(
        kind="paid_backlog",
        request=request,
        dry_run=bool(request["dry_run"]),
        source=source,
        envelope_id=envelope_id,
        status=RUNNING,
        created_at=at,
    )
    session.add(job)
    session.flush()
    return job


def planned(session: Session, job: BulkJob, *, chunks: int, orders: int, at: datetime) -> None:
    """Record how many chunks and orders the job has; a job with none is done at once."""
    job.chunks_total, job.orders_total = chunks, orders
    if chunks == 0:
        job.status, job.finished_at = DONE, at
    session.flush()


def add_results(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert per-order results (job_id, number, order_id, outcome, reasons, skus); how many
    were new (a result already there is kept)."""
    return len(insert_many_ignore(session, BulkJobResult, list(rows), ["job_id", "number"]))


def has_result(session: Session, job_id: int, number: str) -> bool:
    """Whether the job has a result for this order number (its chunk ran)."""
    query = select(BulkJobResult.id).where(
        BulkJobResult.job_id == job_id, BulkJobResult.number == number
    )
    return session.scalar(query.limit(1)) is not None


def count_chunk(session: Session, job_id: int, tally: ChunkTally, at: datetime) -> None:
    """Add a chunk to the job's progress; the last chunk marks it done."""
    last = BulkJob.chunks_done + 1 >= BulkJob.chunks_total
    session.execute(
        update(BulkJob)
        .where(BulkJob.id == job_id)
        .values(
            chunks_done=BulkJob.chunks_done + 1,
            orders_done=BulkJob.orders_done + tally.orders,
            created=BulkJob.created + tally.created,
            skus_created=BulkJob.skus_created + tally.skus_created,
            already_created=BulkJob.already_created + tally.already_created,
            skipped=BulkJob.skipped + tally.skipped,
            unknown=BulkJob.unknown + tally.unknown,
            status=case((last, DONE), else_=RUNNING),
            finished_at=case((last, at), else_=None),
        )
    )


def chunk_key(job_id: int, chunk: int) -> str:
    """The outbox key of a job's chunk: unique, so a chunk is staged once."""
    return f"bulkjob:{job_id}:chunk:{chunk}"


def _chunk_keys(job: BulkJob) -> list[str]:
    # Exact keys, so the lookup uses the outbox key's unique index under any collation.
    return [chunk_key(job.id, n) for n in range(1, job.chunks_total + 1)]


def chunk_jobs(session: Session, job: BulkJob) -> list[tuple[int, str]]:
    """(outbox id, status) of the job's chunks, in the order they were staged."""
    query = (
        select(OutboxJob.id, OutboxJob.status)
        .where(OutboxJob.key.in_(_chunk_keys(job)))
        .order_by(OutboxJob.id)
    )
    return [(int(i), str(s)) for i, s in session.execute(query)]


def failed_chunks(session: Session, job: BulkJob) -> int:
    """How many of the job's chunks failed for good (after all their attempts)."""
    if job.chunks_total == 0:
        return 0
    query = select(func.count()).where(
        OutboxJob.key.in_(_chunk_keys(job)), OutboxJob.status == "failed"
    )
    return int(session.scalar(query) or 0)


def recent_jobs(session: Session, limit: int) -> Sequence[BulkJob]:
    """Running jobs first, then the newest finished ones; at most `limit`."""
    query = (
        select(BulkJob)
        .order_by(case((BulkJob.status == RUNNING, 0), else_=1), BulkJob.id.desc())
        .limit(limit)
    )
    return session.scalars(query).all()


def iter_results(
    session: Session, job_id: int, outcome: str | None = None
) -> Iterator[BulkJobResult]:
    """A job's results by order number, streamed (a job may hold 100,000 of them)."""
    query = select(BulkJobResult).where(BulkJobResult.job_id == job_id)
    if outcome is not None:
        query = query.where(BulkJobResult.outcome == outcome)
    query = query.order_by(BulkJobResult.number).execution_options(yield_per=RESULTS_CHUNK)
    for result in session.scalars(query):
        yield result
        session.expunge(result)
