"""The composition root: settings, database, broker and clock wired together for a process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from dramatiq.brokers.redis import RedisBroker

from models.db import migrate
from models.db.engine import Database, connect
from models.db.uow import StagedJob, UnitOfWork
from models.domain.backorders import ReleasePolicy
from models.domain.desk import DeskSettings
from tasks.backlog.paid import CHUNK
from tasks.deadlines.webhook import webhook_job
from tasks.notifications.sending import email_job
from tasks.outbox.egress import egress_jobs
from tasks.outbox.jobs import PROBE, JobRegistry, JobSpec
from tasks.outbox.runner import RunResult, Started, run_outbox_job
from tasks.payments.jobs import payment_jobs
from workers.adapters import stripe as stripe_adapter
from workers.adapters.egress_stream import RedisStreamAppender
from workers.adapters.smtp import SmtpMailer, parse_smtp_url
from workers.adapters.templating import JinjaRenderer
from workers.adapters.webhook import HttpWebhookPoster
from workers.queue import embedded_redis as embedded
from workers.queue.actors import JOB_MAX_ATTEMPTS, declare_actors
from workers.queue.broker import IgnoreProducerOptions, build_broker
from workers.queue.job_observer import JobLogContext, observed
from workers.queue.publish import enqueue_staged
from workers.settings import Settings


def utc_now() -> datetime:
    """The wall clock, aware and in UTC."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything one orderflow process needs; build with `open_runtime`, end with `close`."""

    settings: Settings
    db: Database
    redis_url: str = field(repr=False)  # may hold a password
    broker: RedisBroker
    jobs: JobRegistry
    embedded_redis: embedded.EmbeddedRedis | None = None
    _closed: bool = field(default=False, repr=False)

    def clock(self) -> datetime:
        """Now, aware UTC."""
        return utc_now()

    @property
    def redis_client(self) -> redis.Redis:
        """The broker's Redis connection (the scheduler's heartbeats use it)."""
        return self.broker.client

    def new_uow(self) -> UnitOfWork:
        """A unit of work that publishes its outbox jobs to the broker after commit."""
        return UnitOfWork(
            self.db,
            self.clock,
            publisher=self.publish,
            redeliver_after=timedelta(seconds=self.settings.outbox_redeliver_after_s),
            options=DeskSettings(
                desk_email=self.settings.desk_email,
                reminder_share=self.settings.reminder_share,
                backorder_policy=ReleasePolicy(self.settings.backorder_policy),
            ),
        )

    def publish(self, staged: Sequence[StagedJob]) -> None:
        """Send committed outbox jobs to their queues."""
        enqueue_staged(self.broker, staged)

    def run_job(self, outbox_id: int, started: Started | None = None) -> RunResult:
        """Run one outbox job (what the actors call); `started` learns its name and key."""
        return run_outbox_job(self.new_uow, outbox_id, JOB_MAX_ATTEMPTS, started, jobs=self.jobs)

    def declare_actors(self) -> None:
        """Bind the job actors to this runtime's broker (worker processes only)."""
        # First, so that every other middleware's lines about a message carry its fields.
        self.broker.add_middleware(JobLogContext(), before=IgnoreProducerOptions)
        declare_actors(self.broker, observed(self.run_job))

    def close(self) -> None:
        """Release connections and, if we were its last user, the embedded Redis."""
        if self._closed:
            return
        self._closed = True
        self.broker.close()
        self.db.dispose()
        if self.embedded_redis is not None:
            embedded.release(self.embedded_redis)


def prepare_database(settings: Settings) -> None:
    """Migrate the embedded database; refuse to run on a configured one that is not current.

    A configured database is only read here, never altered: processes may run as a role that
    cannot change the schema (docs/security.md); migrating is `orderflow db upgrade`'s job.
    """
    url = settings.effective_database_url()
    if not settings.database_url:
        migrate.upgrade(url)
        return
    db = connect(url)
    try:
        current, expected = migrate.revisions(db.engine)
    finally:
        db.dispose()
    if current != expected:
        raise SystemExit(
            f"the database schema is at {_revisions(current)}, expected {_revisions(expected)}: "
            "run `orderflow db upgrade` as the owner role"
        )


def _revisions(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "no revision (empty database)"


def open_runtime(settings: Settings | None = None) -> Runtime:
    """Connect to the configured services, or to the embedded defaults."""
    settings = settings or Settings()
    server = None
    redis_url = settings.redis_url
    if not redis_url:
        server = embedded.acquire(settings.data_dir)
        redis_url = server.url
    db = connect(settings.effective_database_url(), pool_size=settings.worker_threads + 2)
    broker = build_broker(redis_url, settings)
    jobs = build_jobs(settings, broker.client)
    return Runtime(
        settings=settings,
        db=db,
        redis_url=redis_url,
        broker=broker,
        jobs=jobs,
        embedded_redis=server,
    )


def build_jobs(settings: Settings, client: redis.Redis) -> JobRegistry:
    """Every job this process can run, each with the adapters it calls."""
    return JobRegistry(
        [
            PROBE,
            CHUNK,
            *payment_job_specs(settings),
            email_job_spec(settings),
            webhook_job(
                HttpWebhookPoster(
                    settings.oem_webhook_secret.get_secret_value().encode(),
                    settings.oem_webhook_timeout_s,
                )
            ),
            *egress_jobs(RedisStreamAppender(client, settings.egress_max_len)),
        ]
    )


def payment_job_specs(settings: Settings) -> list[JobSpec]:
    """The payment jobs against the configured Stripe, its calls side by side."""
    gateway = stripe_adapter.gateway_factory(settings)
    # A claim older than a few Stripe timeouts belongs to a worker that died mid-call.
    stale = timedelta(seconds=3 * settings.stripe_timeout_s)
    return payment_jobs(gateway, stale, stripe_adapter.side_by_side(settings.stripe_concurrency))


def email_job_spec(settings: Settings) -> JobSpec:
    """The email job with the configured SMTP server (none: mail waits) and templates."""
    smtp_url = settings.smtp_url.get_secret_value()
    mailer = SmtpMailer(parse_smtp_url(smtp_url)) if smtp_url else None
    override = Path(settings.template_dir) if settings.template_dir else None
    return email_job(mailer, JinjaRenderer(override), settings.mail_from)
