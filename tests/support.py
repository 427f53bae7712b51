"""Small helpers shared by integration, e2e and chaos tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from models.db import migrate
from models.db.engine import Database, connect
from models.db.tables import OutboxJob, ProbeEffect
from models.db.uow import UnitOfWork
from tasks.intake.ingest import IngestPolicy, Outcome, ingest_batch


def migrated(url: str) -> Database:
    """A connected database at the newest migration."""
    migrate.upgrade(url)
    return connect(url, pool_size=10)


def now() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; bounded in time and count."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / interval_s) + 2):
        if condition():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    return condition()


def probe_counts(db: Database) -> tuple[int, int, int]:
    """(outbox jobs done, probe effects, distinct probe keys)."""
    with db.sessions() as session:
        done = session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.status == "done")
        )
        effects = session.scalar(select(func.count()).select_from(ProbeEffect))
        distinct = session.scalar(select(func.count(func.distinct(ProbeEffect.probe_key))))
    return int(done or 0), int(effects or 0), int(distinct or 0)


def feed(db: Database, bodies: list[bytes], policy: IngestPolicy, at: datetime) -> list[Outcome]:
    """Apply raw envelopes as one ingress batch at time `at`, and commit."""
    with UnitOfWork(db, lambda: at) as uow:
        outcomes = ingest_batch(uow, bodies, policy)
        uow.commit()
    return outcomes
