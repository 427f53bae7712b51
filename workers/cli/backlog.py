"""What the CLI does about paid backlog: start a bulk job and follow it, run a dry run in this
process, report a job's results, export paid backlog, and the `bulk_jobs` status section."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from models.db import backlog, bulk_jobs
from models.db.bulk_jobs import BulkJob
from models.db.engine import Database
from models.db.uow import UnitOfWork
from tasks.backlog.paid import CHUNK, start_job
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import run_outbox_job
from workers.queue.actors import JOB_MAX_ATTEMPTS

# Here only the chunks run (in this process, for the dry run and --no-wait).
CHUNKS = JobRegistry([CHUNK])

PAID_BACKLOG_COLUMNS = ("number", "sku", "quantity", "remaining", "created_at", "consumed_by")
POLL_S = 0.5


def summary(session: Session, job: BulkJob) -> dict[str, Any]:
    """A job's request, state, progress and totals as plain data."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "request": job.request,
        "dry_run": job.dry_run,
        "source": job.source,
        "status": job.status,
        "orders_done": job.orders_done,
        "orders_total": job.orders_total,
        "chunks_done": job.chunks_done,
        "chunks_total": job.chunks_total,
        "chunks_failed": bulk_jobs.failed_chunks(session, job),
        "created": job.created,
        "skus_created": job.skus_created,
        "already_created": job.already_created,
        "skipped": job.skipped,
        "unknown": job.unknown,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def start(uow: UnitOfWork, numbers: Sequence[str] | None, *, dry_run: bool) -> int:
    """Create the job and commit (with a publisher, its chunks go to the workers now)."""
    job_id = start_job(uow, order_numbers=numbers, dry_run=dry_run, source="cli")
    uow.commit()
    return job_id


def run_here(db: Database, job_id: int, clock: Callable[[], datetime], console: Console) -> None:
    """Run a job's chunks in this process, with a progress bar (the dry run). A worker that
    took a chunk first leaves it done; the runner then skips it."""
    with db.sessions() as session:
        job = session.get(BulkJob, job_id)
        assert job is not None
        chunks = bulk_jobs.chunk_jobs(session, job)
    with _progress(console) as progress:
        task = progress.add_task(f"job {job_id}", total=len(chunks))
        for outbox_id, _ in chunks:
            run_outbox_job(lambda: UnitOfWork(db, clock), outbox_id, JOB_MAX_ATTEMPTS, jobs=CHUNKS)
            progress.advance(task)


def follow(db: Database, job_id: int, console: Console, timeout_s: float | None = None) -> bool:
    """Poll the job record with a progress bar until it is done; False on timeout."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with _progress(console) as progress:
        task = progress.add_task(f"job {job_id}", total=None)
        while True:
            with db.sessions() as session:
                job = session.get(BulkJob, job_id)
                assert job is not None
                progress.update(task, total=job.orders_total, completed=job.orders_done)
                if job.status == bulk_jobs.DONE:
                    return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("orders"),
        TimeElapsedColumn(),
        console=console,
    )


def result_rows(
    session: Session, job_id: int, outcome: str | None = None
) -> Iterator[dict[str, Any]]:
    """A job's per-order results, streamed, reasons as a list."""
    for r in bulk_jobs.iter_results(session, job_id, outcome):
        yield {
            "number": r.number,
            "outcome": r.outcome,
            "reasons": r.reasons.split(",") if r.reasons else [],
            "skus": r.skus,
        }


def job_report(
    session: Session, job_id: int, outcome: str | None, limit: int
) -> dict[str, Any] | None:
    """The job's summary and its first `limit` results (of one outcome, if given)."""
    job = session.get(BulkJob, job_id)
    if job is None:
        return None
    rows = list(itertools.islice(result_rows(session, job_id, outcome), limit))
    return {"job": summary(session, job), "results": rows}


def write_report_json(session: Session, job: BulkJob, outcome: str | None, out: TextIO) -> None:
    """{"job": ..., "results": [...]}, written as it streams (results can be many)."""
    out.write('{"job": ' + json.dumps(summary(session, job), ensure_ascii=False))
    out.write(', "results": [')
    for n, row in enumerate(result_rows(session, job.id, outcome)):
        out.write(("," if n else "") + "\n  " + json.dumps(row, ensure_ascii=False))
    out.write("\n]}\n")


def iter_paid_backlog(session: Session, fmt: str) -> Iterator[dict[str, Any]]:
    """Export rows: each paid backlog SKU and the notes that consumed it (a list of
    {note, quantity} in JSON lines; `note:quantity;…` in CSV)."""
    for row in backlog.iter_paid_backlog(session):
        consumed: Any = [{"note": note, "quantity": q} for note, q in row.consumed_by]
        if fmt == "csv":
            consumed = ";".join(f"{note}:{q}" for note, q in row.consumed_by)
        yield {
            "number": row.number,
            "sku": row.sku,
            "quantity": row.quantity,
            "remaining": row.remaining,
            "created_at": row.created_at.isoformat(),
            "consumed_by": consumed,
        }


def status_section(session: Session, limit: int) -> dict[str, Any]:
    """Running bulk jobs, then the newest finished ones."""
    return {"jobs": [summary(session, job) for job in bulk_jobs.recent_jobs(session, limit)]}
