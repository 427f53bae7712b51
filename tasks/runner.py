"""Runs one outbox job exactly once: lock its row, run it, mark it done in the same commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.db.tables import OutboxJob
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError, RetryableError
from tasks.jobs import get_job

UowFactory = Callable[[], UnitOfWork]
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RunResult:
    """What happened to one delivery of an outbox job."""

    outcome: str  # done | duplicate | missing | failed
    detail: str = ""


def run_outbox_job(new_uow: UowFactory, outbox_id: int, max_attempts: int) -> RunResult:
    """Run the job once; a second delivery finds it done and does nothing."""
    try:
        with new_uow() as uow:
            row = uow.session.get(OutboxJob, outbox_id, with_for_update=True)
            if row is None:
                return RunResult("missing")
            if row.status != "pending":
                return RunResult("duplicate", row.status)
            get_job(row.job).fn(uow, dict(row.payload))
            row.status = "done"
            row.attempts += 1
            row.done_at = uow.clock()
            uow.commit()
            return RunResult("done")
    except PermanentError as error:
        _record_failure(new_uow, outbox_id, str(error), final=True, max_attempts=max_attempts)
        return RunResult("failed", error.reason)
    except Exception as error:
        # Anything else (including RetryableError) is retried until max_attempts.
        if _record_failure(
            new_uow, outbox_id, _describe(error), final=False, max_attempts=max_attempts
        ):
            return RunResult("failed", "max_attempts")
        if isinstance(error, RetryableError):
            raise
        raise RetryableError("job_error", _describe(error)) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def _record_failure(
    new_uow: UowFactory, outbox_id: int, message: str, *, final: bool, max_attempts: int
) -> bool:
    """Count the attempt; True when the job is now failed for good."""
    with new_uow() as uow:
        row = uow.session.get(OutboxJob, outbox_id, with_for_update=True)
        if row is None or row.status != "pending":
            return False
        row.attempts += 1
        row.last_error = message[:MAX_ERROR_CHARS]
        failed = final or row.attempts >= max_attempts
        if failed:
            row.status = "failed"
            row.done_at = uow.clock()
        uow.commit()
        return failed
