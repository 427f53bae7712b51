"""Runs one outbox job exactly once: lock its row, run it, mark it done in the same commit.

External jobs (SMTP, HTTP, Stripe) cannot share a transaction with their effect; they keep
their own exactly-once record, and the outbox row is marked done after they return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update

from models.db.failpoints import crash_point
from models.db.tables import OutboxJob
from models.db.uow import UowFactory
from models.domain.errors import PermanentError, RetryableError
from tasks.outbox.jobs import JobRegistry, JobSpec

MAX_ERROR_CHARS = 2000
# Told (job name, key) once the row is loaded: how the caller labels its logs and metrics.
Started = Callable[[str, str], None]


@dataclass(frozen=True)
class RunResult:
    """What happened to one delivery of an outbox job."""

    outcome: str  # done | duplicate | missing | failed
    detail: str = ""


def run_outbox_job(
    new_uow: UowFactory,
    outbox_id: int,
    max_attempts: int,
    started: Started | None = None,
    *,
    jobs: JobRegistry,
) -> RunResult:
    """Run the job once; a second delivery finds it done and does nothing."""
    limit: int | None = max_attempts
    try:
        with new_uow() as uow:
            row = uow.session.get(OutboxJob, outbox_id, with_for_update=True)
            if row is None:
                return RunResult("missing")
            if started is not None:
                started(row.job, row.key)
            if row.status != "pending":
                return RunResult("duplicate", row.status)
            spec = jobs.get(row.job)
            payload = dict(row.payload)
            if spec.fn is not None:
                spec.fn(uow, payload)
                row.status, row.done_at = "done", uow.clock()
                row.attempts += 1
                uow.commit()
                return RunResult("done")
        limit = None  # external jobs are retried until they succeed or fail permanently
        return _run_external(new_uow, outbox_id, spec, payload)
    except PermanentError as error:
        _record_failure(new_uow, outbox_id, str(error), final=True, max_attempts=limit)
        return RunResult("failed", error.reason)
    except Exception as error:
        # Anything else (including RetryableError) is retried until max_attempts.
        if _record_failure(new_uow, outbox_id, _describe(error), final=False, max_attempts=limit):
            return RunResult("failed", "max_attempts")
        if isinstance(error, RetryableError):
            raise
        raise RetryableError("job_error", _describe(error)) from error


def _run_external(
    new_uow: UowFactory, outbox_id: int, spec: JobSpec, payload: dict[str, object]
) -> RunResult:
    assert spec.external is not None
    spec.external(new_uow, payload)
    crash_point(f"{spec.name}.after_outcome")  # the outcome is recorded, the job not yet done
    with new_uow() as uow:
        uow.session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == outbox_id, OutboxJob.status == "pending")
            .values(status="done", done_at=uow.clock(), attempts=OutboxJob.attempts + 1)
        )
        uow.commit()
    return RunResult("done")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def _record_failure(
    new_uow: UowFactory, outbox_id: int, message: str, *, final: bool, max_attempts: int | None
) -> bool:
    """Count the attempt; True when the job is now failed for good."""
    with new_uow() as uow:
        row = uow.session.get(OutboxJob, outbox_id, with_for_update=True)
        if row is None or row.status != "pending":
            return False
        row.attempts += 1
        row.last_error = message[:MAX_ERROR_CHARS]
        failed = final or (max_attempts is not None and row.attempts >= max_attempts)
        if failed:
            row.status = "failed"
            row.done_at = uow.clock()
        uow.commit()
        return failed
