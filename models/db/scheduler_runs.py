"""Statements on `scheduler_runs`: how a claimed tick ended, and forgetting old ticks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models.db.machinery import SchedulerRun

MAX_OUTCOME_CHARS = 2000


def finish(session: Session, job: str, tick: datetime, at: datetime, outcome: str) -> None:
    """Record when and how `job`'s run at `tick` ended. A claimed tick left without an end was
    cut short: its scheduler died or the job failed."""
    session.execute(
        update(SchedulerRun)
        .where(SchedulerRun.job == job, SchedulerRun.tick == tick)
        .values(finished_at=at, outcome=outcome[:MAX_OUTCOME_CHARS])
    )


def prune(session: Session, before: datetime, limit: int) -> int:
    """Delete up to `limit` ticks older than `before`; how many. Only recent ticks guard against
    a second firing; an old one could matter only if the clock went back that far, and the
    scans are exactly-once without the claim anyway."""
    old = select(SchedulerRun.id).where(SchedulerRun.tick < before).limit(limit)
    ids = list(session.scalars(old))
    if ids:
        session.execute(delete(SchedulerRun).where(SchedulerRun.id.in_(ids)))
    return len(ids)
