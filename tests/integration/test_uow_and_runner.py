"""Unit of work, outbox staging and the exactly-once job runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models.db.engine import Database
from models.db.tables import Customer, OutboxJob, ProbeEffect
from models.db.uow import JobKind, StagedJob, UnitOfWork
from models.domain.errors import PermanentError, RetryableError
from tasks.outbox.jobs import PROBE, PROBE_JOB, JobRegistry, JobSpec
from tasks.outbox.runner import run_outbox_job
from tests.support import now, probe_counts

pytestmark = pytest.mark.integration


class Recorder:
    """A publisher that remembers what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[StagedJob]] = []
        self.fail = fail

    def __call__(self, staged: Sequence[StagedJob]) -> None:
        self.batches.append(list(staged))
        if self.fail:
            raise ConnectionError("broker down")


def test_staged_jobs_are_published_once_after_commit_and_keys_deduplicate(db: Database) -> None:
    # Given
    publisher = Recorder()
    # When the same key is staged twice in one transaction and once more in another
    with UnitOfWork(db, now, publisher) as uow:
        assert uow.stage(PROBE_JOB, "k1", {"key": "a"}) is True
        assert uow.stage(PROBE_JOB, "k1", {"key": "b"}) is False
        assert publisher.batches == []
        uow.commit()
    with UnitOfWork(db, now, publisher) as uow:
        assert uow.stage(PROBE_JOB, "k1", {"key": "c"}) is False
        uow.commit()
    # Then one row, published once, with the first payload
    with db.sessions() as session:
        rows = session.scalars(select(OutboxJob)).all()
    assert [(r.key, r.payload, r.sends) for r in rows] == [("k1", {"key": "a"}, 1)]
    assert publisher.batches == [[StagedJob(rows[0].id, "system.probe", "default")]]


def test_nothing_is_published_or_kept_when_the_transaction_rolls_back(db: Database) -> None:
    publisher = Recorder()
    with UnitOfWork(db, now, publisher) as uow:
        uow.stage(PROBE_JOB, "k1", {"key": "a"})
    assert publisher.batches == []
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxJob)) == 0


def test_jobs_staged_in_a_rolled_back_savepoint_are_neither_kept_nor_published(
    db: Database,
) -> None:
    # Given a job staged before a savepoint, one inside it (rolled back) and one after
    publisher = Recorder()
    with UnitOfWork(db, now, publisher) as uow:
        uow.stage(PROBE_JOB, "before", {"key": "a"})
        savepoint = uow.savepoint()
        uow.stage(PROBE_JOB, "inside", {"key": "b"})
        savepoint.rollback()
        kept = uow.savepoint()
        uow.stage(PROBE_JOB, "after", {"key": "c"})
        kept.commit()
        uow.commit()
    # Then only the two that still have rows are published, in one batch
    with db.sessions() as session:
        rows = session.scalars(select(OutboxJob).order_by(OutboxJob.id)).all()
    assert [r.key for r in rows] == ["before", "after"]
    assert publisher.batches == [[StagedJob(r.id, "system.probe", "default") for r in rows]]


def test_a_failed_publish_keeps_the_commit_for_the_relay(db: Database) -> None:
    with UnitOfWork(db, now, Recorder(fail=True)) as uow:
        uow.stage(PROBE_JOB, "k1", {"key": "a"})
        uow.commit()
    with db.sessions() as session:
        row = session.scalars(select(OutboxJob)).one()
    assert (row.status, row.sends) == ("pending", 1)


def test_without_a_publisher_jobs_wait_for_the_relay(db: Database) -> None:
    t0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    with UnitOfWork(db, lambda: t0) as uow:
        uow.stage(PROBE_JOB, "k1", {"key": "a"})
        uow.commit()
    with db.sessions() as session:
        row = session.scalars(select(OutboxJob)).one()
    assert (row.sends, row.sent_at, row.next_send_at) == (0, None, t0)


def test_datetimes_come_back_aware_utc_and_naive_ones_are_refused(db: Database) -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    with UnitOfWork(db, lambda: berlin) as uow:
        uow.stage(PROBE_JOB, "k1", {"key": "a"})
        uow.commit()
    with db.sessions() as session:
        row = session.scalars(select(OutboxJob)).one()
    assert row.created_at == berlin
    assert row.created_at.utcoffset() == timedelta(0)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with UnitOfWork(db, lambda: naive) as uow, pytest.raises(Exception, match="naive"):
        uow.stage(PROBE_JOB, "k2", {"key": "b"})


def _stage(db: Database, key: str, job: JobKind = PROBE_JOB, **payload: Any) -> int:
    with UnitOfWork(db, now) as uow:
        uow.stage(job, key, {"key": key, **payload})
        uow.commit()
    with db.sessions() as session:
        return int(session.scalars(select(OutboxJob.id).where(OutboxJob.key == key)).one())


def test_a_job_runs_once_however_often_it_is_delivered(db: Database) -> None:
    # Given
    job_id = _stage(db, "p1")
    # When delivered three times
    outcomes = [
        run_outbox_job(lambda: UnitOfWork(db, now), job_id, 5, jobs=JOBS).outcome for _ in range(3)
    ]
    # Then
    assert outcomes == ["done", "duplicate", "duplicate"]
    assert probe_counts(db) == (1, 1, 1)


def test_concurrent_deliveries_of_one_job_make_one_effect(db: Database) -> None:
    # Given one job and eight threads delivering it at the same moment
    job_id = _stage(db, "p1", work_ms=100)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def deliver() -> None:
        barrier.wait(10)
        outcomes.append(run_outbox_job(lambda: UnitOfWork(db, now), job_id, 5, jobs=JOBS).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then exactly one ran it
    assert sorted(outcomes) == ["done"] + ["duplicate"] * 7
    assert probe_counts(db) == (1, 1, 1)


def _permanent(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    uow.session.add(Customer(id="c1", email="a@example.com", name="A"))
    raise PermanentError("contract_violation", "bad data")


def _flaky(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    uow.session.add(ProbeEffect(probe_key="flaky", at=uow.clock()))
    raise RetryableError("smtp_down", "connection refused")


PERMANENT, FLAKY, GHOST = JobKind("test.permanent"), JobKind("test.flaky"), JobKind("no.such.job")
JOBS = JobRegistry([PROBE, JobSpec(PERMANENT, fn=_permanent), JobSpec(FLAKY, fn=_flaky)])


def test_a_permanent_failure_is_recorded_with_its_reason_and_undone(db: Database) -> None:
    job_id = _stage(db, "perm", job=PERMANENT)
    result = run_outbox_job(lambda: UnitOfWork(db, now), job_id, 5, jobs=JOBS)
    assert (result.outcome, result.detail) == ("failed", "contract_violation")
    with db.sessions() as session:
        row = session.get(OutboxJob, job_id)
        assert row is not None
        assert (row.status, row.attempts, row.last_error) == (
            "failed",
            1,
            "contract_violation: bad data",
        )
        assert session.scalar(select(func.count()).select_from(Customer)) == 0
    # A later delivery does not run it again.
    assert run_outbox_job(lambda: UnitOfWork(db, now), job_id, 5, jobs=JOBS).outcome == "duplicate"


def test_a_retryable_failure_is_counted_retried_and_failed_at_the_limit(db: Database) -> None:
    job_id = _stage(db, "flaky", job=FLAKY)
    for _ in range(2):
        with pytest.raises(RetryableError):
            run_outbox_job(lambda: UnitOfWork(db, now), job_id, 3, jobs=JOBS)
    assert run_outbox_job(lambda: UnitOfWork(db, now), job_id, 3, jobs=JOBS).outcome == "failed"
    with db.sessions() as session:
        row = session.get(OutboxJob, job_id)
        assert row is not None
        assert (row.status, row.attempts) == ("failed", 3)
        assert session.scalar(select(func.count()).select_from(ProbeEffect)) == 0


def test_an_unknown_job_name_fails_permanently(db: Database) -> None:
    job_id = _stage(db, "ghost", job=GHOST)
    assert run_outbox_job(lambda: UnitOfWork(db, now), job_id, 5, jobs=JOBS).outcome == "failed"
