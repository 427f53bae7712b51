"""The unit of work: one transaction, plus outbox jobs published only after it commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session, SessionTransaction

from models.db.engine import Database
from models.db.failpoints import crash_point
from models.db.machinery import OutboxJob
from models.db.sql import insert_many_ignore
from models.domain.desk import DeskSettings

QUEUES = ("default", "payments", "notifications", "bulk")


@dataclass(frozen=True)
class JobKind:
    """An outbox job's name and the queue it runs on: the one place a job's queue is set."""

    name: str
    queue: str = "default"

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"unknown queue {self.queue!r}")


@dataclass(frozen=True)
class StagedJob:
    """An outbox row to hand to the broker once its transaction has committed."""

    outbox_id: int
    job: str
    queue: str


class Savepoint:
    """A nested transaction of a unit of work (see `UnitOfWork.savepoint`)."""

    def __init__(self, nested: SessionTransaction, staged: list[StagedJob]) -> None:
        self._nested = nested
        self._staged = staged
        self._mark = len(staged)

    def commit(self) -> None:
        self._nested.commit()

    def rollback(self) -> None:
        self._nested.rollback()
        # Their rows are gone with the savepoint: publishing them would send jobs for nothing.
        del self._staged[self._mark :]


Publisher = Callable[[Sequence[StagedJob]], None]
Clock = Callable[[], datetime]
UowFactory = Callable[[], "UnitOfWork"]


class UnitOfWork:
    """Open with `with`, call `commit()`; anything not committed is rolled back."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        publisher: Publisher | None = None,
        redeliver_after: timedelta = timedelta(seconds=30),
        options: DeskSettings | None = None,
    ) -> None:
        self.db = db
        # Process configuration that handlers may read (e.g. the backorder release policy);
        # handlers cannot import the settings layer, so the composition root passes it in.
        self.options = options or DeskSettings()
        # What this transaction parked messages under (`order:N`): its later messages about the
        # same thing wait behind them, even once it exists (see `tasks.intake.ingest`).
        self.parked_for: set[str] = set()
        self.clock = clock
        self._publisher = publisher
        self._redeliver_after = redeliver_after
        self._staged: list[StagedJob] = []
        self.session: Session = db.sessions()

    def __enter__(self) -> UnitOfWork:
        self.session.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.session.in_transaction():
            self.session.rollback()
        self.session.close()

    def stage(self, job: JobKind, key: str, payload: dict[str, Any]) -> bool:
        """Add an outbox job unless one with this key exists; True when it was new."""
        return self.stage_many(job, [(key, payload)]) == 1

    def stage_many(self, job: JobKind, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Add one outbox job per (key, payload) whose key is new; how many were new."""
        now = self.clock()
        fast = self._publisher is not None
        rows = [
            {
                "key": key,
                "job": job.name,
                "queue": job.queue,
                "payload": payload,
                "status": "pending",
                "created_at": now,
                # With a publisher it is sent right after commit and the reconciler re-sends
                # it after redeliver_after; without one the relay sends it on its next tick.
                "next_send_at": now + self._redeliver_after if fast else now,
                "sent_at": now if fast else None,
                "sends": 1 if fast else 0,
                "attempts": 0,
            }
            for key, payload in items
        ]
        new_ids = insert_many_ignore(self.session, OutboxJob, rows, ["key"])
        self._staged += [
            StagedJob(outbox_id=int(i), job=job.name, queue=job.queue) for i in new_ids
        ]
        return len(new_ids)

    def savepoint(self) -> Savepoint:
        """Open a savepoint; rolling it back also drops the outbox jobs staged inside it."""
        return Savepoint(self.session.begin_nested(), self._staged)

    def commit(self) -> None:
        """Commit, then publish what was staged; a failed publish is left to the relay."""
        self.session.commit()
        crash_point("uow.after_commit")  # committed, outbox jobs not yet handed to the broker
        staged, self._staged = self._staged, []
        if staged and self._publisher is not None:
            try:
                self._publisher(staged)
            except Exception:  # noqa: BLE001 - the relay re-sends; the commit stands
                return
