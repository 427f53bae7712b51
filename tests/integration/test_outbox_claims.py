"""Relay and reconciler claims: each due job is sent once per claim, with backoff."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.db.engine import Database
from models.db.outbox import claim_due
from models.db.tables import OutboxJob
from models.db.uow import StagedJob, UnitOfWork
from tasks.outbox.jobs import PROBE_JOB

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
AFTER = timedelta(seconds=30)


def _claim(db: Database, at: datetime, *, first_send: bool, limit: int = 100) -> list[StagedJob]:
    with UnitOfWork(db, lambda: at) as uow:
        claimed = claim_due(
            uow.session, at, first_send=first_send, redeliver_after=AFTER, limit=limit
        )
        uow.commit()
    return claimed


def _stage_unsent(db: Database, count: int) -> None:
    with UnitOfWork(db, lambda: T0) as uow:
        for index in range(count):
            uow.stage(PROBE_JOB, f"k{index}", {"key": f"k{index}"})
        uow.commit()


def test_the_relay_sends_unsent_jobs_once_and_the_reconciler_backs_off(db: Database) -> None:
    # Given three jobs committed without a publisher
    _stage_unsent(db, 3)
    # When the relay runs twice at the same moment
    first = _claim(db, T0, first_send=True)
    second = _claim(db, T0, first_send=True)
    # Then they were sent once
    assert [job.job for job in first] == ["system.probe"] * 3
    assert second == []
    # And the reconciler re-sends them only after redeliver_after, then after twice that
    assert _claim(db, T0 + AFTER - timedelta(seconds=1), first_send=False) == []
    assert len(_claim(db, T0 + AFTER, first_send=False)) == 3
    assert _claim(db, T0 + AFTER + 2 * AFTER - timedelta(seconds=1), first_send=False) == []
    assert len(_claim(db, T0 + 3 * AFTER, first_send=False)) == 3
    with db.sessions() as session:
        assert set(session.scalars(select(OutboxJob.sends))) == {3}


def test_done_jobs_are_never_re_sent(db: Database) -> None:
    _stage_unsent(db, 2)
    with db.sessions() as session, session.begin():
        row = session.scalars(select(OutboxJob).where(OutboxJob.key == "k0")).one()
        row.status = "done"
    assert [job.outbox_id for job in _claim(db, T0, first_send=True)] != []
    later = _claim(db, T0 + timedelta(days=1), first_send=False)
    assert len(later) == 1


def test_two_schedulers_claiming_at_once_send_each_job_once(db: Database) -> None:
    # Given 300 unsent jobs and two relays racing
    _stage_unsent(db, 300)
    barrier = threading.Barrier(2)
    results: list[list[StagedJob]] = []

    def relay() -> None:
        barrier.wait(10)
        for _ in range(10):
            results.append(_claim(db, T0, first_send=True, limit=50))

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every job was claimed exactly once between them
    ids = [job.outbox_id for batch in results for job in batch]
    assert len(ids) == 300
    assert len(set(ids)) == 300
