"""The test bed of the money model: one database and one Stripe fake for a whole pytest test,
envelopes applied through the real ingress, and the payment and bulk outbox jobs run in process.

The database clock follows the fake's clock, so letting holds lapse moves both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from models.db.engine import Database
from models.db.machinery import Notification, OutboxJob
from models.db.uow import UnitOfWork
from models.domain.desk import DeskSettings
from models.domain.errors import RetryableError
from tasks.backlog.paid import CHUNK
from tasks.intake.ingest import Outcome, ingest_batch
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import run_outbox_job
from tests import factories as f
from tests.fakes.stripe_server import StripeFake
from workers.runtime import payment_job_specs
from workers.settings import Settings

API_KEY = "sk_test_money_model_7"
DESK = "desk@example.com"
# Jobs whose effects are database state the invariants read; mail and egress are only counted.
RUN_QUEUES = ("payments", "bulk")
JOB_ROUNDS = 4


@dataclass
class Tally:
    """What the runs did, for the report line."""

    examples: int = 0
    steps: int = 0
    checks: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    job_errors: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], key: str) -> None:
        bucket[key] = bucket.get(key, 0) + 1


@dataclass
class MoneyBed:
    """A database and a Stripe fake over HTTP, shared by every example of one test."""

    db: Database
    fake: StripeFake
    kind: str
    jobs: JobRegistry
    tally: Tally = field(default_factory=Tally)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.fake.clock.now(), UTC)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.now, options=DeskSettings(desk_email=DESK))

    def feed(self, envelopes: list[dict[str, Any]]) -> list[Outcome]:
        """Apply envelopes as one ingress batch (one transaction), as a consumer does."""
        with self.uow() as uow:
            outcomes = ingest_batch(uow, [f.body(e) for e in envelopes], f.policy())
            uow.commit()
        for outcome in outcomes:
            self.tally.count(self.tally.outcomes, f"{outcome.result}:{outcome.reason or ''}")
        return outcomes

    def run_jobs(self) -> int:
        """Run the pending payment and bulk jobs until none is left (bounded); how many ran."""
        ran = 0
        for _ in range(JOB_ROUNDS):
            with self.db.sessions() as session:
                due = session.scalars(
                    select(OutboxJob.id)
                    .where(OutboxJob.status == "pending", OutboxJob.queue.in_(RUN_QUEUES))
                    .order_by(OutboxJob.id)
                ).all()
            if not due:
                break
            for job_id in due:
                ran += 1
                try:
                    run_outbox_job(self.uow, job_id, 20, jobs=self.jobs)
                except RetryableError as error:
                    self.tally.count(self.tally.job_errors, error.reason)
        return ran

    def staged_notifications(self) -> int:
        with self.db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Notification)) or 0)

    def report(self) -> str:
        """The effect-report line (the `money model` marker is collected by tests/conftest)."""
        t = self.tally
        return (f"money model ({self.kind}): examples={t.examples} steps={t.steps} "
                f"invariants=12 checks={t.checks} violations=0")  # fmt: skip


def running_bed(db: Database, kind: str) -> Iterator[MoneyBed]:
    """A bed with its own Stripe fake, and the payment and bulk jobs to run against it."""
    fake = StripeFake.start(API_KEY, seed=19, timeout_delay=1.0, slow_delay=1.0)
    settings = Settings(stripe_api_key=API_KEY, stripe_api_base=fake.base_url,
                        stripe_timeout_s=2.0, _env_file=None)  # fmt: skip
    try:
        yield MoneyBed(db, fake, kind, JobRegistry([*payment_job_specs(settings), CHUNK]))
    finally:
        fake.stop()
