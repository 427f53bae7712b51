"""Seeds for the `orderflow status` tests: each puts one kind of thing a person may need to see
into the database or Redis, at a time relative to `now`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import redis
from dramatiq import Message
from sqlalchemy import select, update

from models.db import intake, operations
from models.db.commerce import Order
from models.db.engine import Database
from models.db.machinery import OutboxJob, QuarantinedMessage, SchedulerRun
from models.db.uow import UnitOfWork
from scheduler import heartbeat
from tasks.deadlines.scan import mark_overdue
from tasks.outbox.jobs import PROBE_JOB
from tests import factories as f
from tests.support import feed
from workers.cli.status_options import ScheduledJob
from workers.queue.broker import build_broker
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_GROUP, INGRESS_STREAM
from workers.settings import Settings


def ms(at: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(at.timestamp() * 1000)


def orders(db: Database, now: datetime, card: dict[str, timedelta], on_account: list[str]) -> None:
    """Card orders (held, lapsing at now + the given offset) and on-account orders, every
    confirmation due in two days; the outbox jobs placing them staged are marked done."""
    envelopes: list[dict[str, Any]] = [f.manufacturer()]
    envelopes += [f.order(n, stripe_payment_intent_id=f"pi_{n}") for n in card]
    envelopes += [f.order(n, payment_method="on_account", stripe_payment_intent_id=None)
                  for n in on_account]  # fmt: skip
    feed(db, [f.body(e) for e in envelopes], f.policy(), now)
    with db.sessions() as session, session.begin():
        session.execute(update(Order).values(confirmation_deadline=now + timedelta(days=2)))
        for number, lapses_in in card.items():
            session.execute(update(Order).where(Order.number == number)
                            .values(capture_before=now + lapses_in))  # fmt: skip
        session.execute(update(OutboxJob).values(status="done", done_at=now))


def capture_failed(db: Database, number: str, reason: str, at: datetime) -> None:
    """The order's family capture failed at `at` for `reason`, and nobody has acted yet."""
    with db.sessions() as session, session.begin():
        session.execute(update(Order).where(Order.number == number)
                        .values(capture_failure=reason, updated_at=at))  # fmt: skip


def overdue(db: Database, now: datetime, numbers: list[str]) -> None:
    """Make these orders' deadlines two hours past and let the scan mark them."""
    with db.sessions() as session, session.begin():
        session.execute(update(Order).where(Order.number.in_(numbers))
                        .values(confirmation_deadline=now - timedelta(hours=2)))  # fmt: skip
    with UnitOfWork(db, lambda: now) as uow:
        assert mark_overdue(uow, now, 100).taken == len(numbers)
        uow.commit()
    with db.sessions() as session, session.begin():
        session.execute(update(OutboxJob).values(status="done", done_at=now))


def operation(db: Database, number: str, kind: str, status: str, at: datetime) -> None:
    """A Stripe operation on `number`, created at `at`, left in `status`."""
    with db.sessions() as session, session.begin():
        order_id = session.scalar(select(Order.id).where(Order.number == number))
        assert order_id is not None
        key = f"order:{order_id}:{kind}"
        new = operations.row(key=key, kind=kind, order_id=order_id, amount=25_800,
                             currency="EUR", at=at)  # fmt: skip
        op_id = operations.create(session, new)
        assert op_id is not None
        if status != "pending":
            error = "timeout: no answer from Stripe" if status == "unclear" else None
            operations.settle(session, op_id, status=status, at=at, error=error)


def outbox_jobs(db: Database, at: datetime, count: int, status: str = "pending") -> None:
    """`count` probe jobs staged at `at` (not sent: no publisher), left in `status`."""
    with UnitOfWork(db, lambda: at) as uow:
        for index in range(count):
            uow.stage(PROBE_JOB, f"seed:{at.isoformat()}:{index}", {"key": str(index)})
        uow.commit()
    if status != "pending":
        with db.sessions() as session, session.begin():
            session.execute(update(OutboxJob).where(OutboxJob.created_at == at)
                            .values(status=status, done_at=at))  # fmt: skip


def quarantined(db: Database, at: datetime, reasons: dict[str, str]) -> None:
    """One quarantine record per (detail: reason), and the last one dropped if named 'dropped'."""
    with db.sessions() as session, session.begin():
        for detail, reason in reasons.items():
            # Distinct bodies: the same bytes held twice would be one record.
            body = detail.encode()
            intake.quarantine(session, body=body, reason=reason, detail=detail, at=at)
            if detail == "dropped":
                session.execute(
                    update(QuarantinedMessage)
                    .where(QuarantinedMessage.body == body)
                    .values(status="dropped")
                )


def parked(db: Database, at: datetime, expires_at: datetime) -> None:
    """One message parked at `at`, waiting for order M-LATE until `expires_at`."""
    with db.sessions() as session, session.begin():
        intake.park(session, envelope_id="00000000-0000-4000-8000-000000000001",
                    awaits="order:M-LATE", type_="order.confirmed", body=b"{}", at=at,
                    expires_at=expires_at)  # fmt: skip


def queued(
    redis_url: str, queue: str, enqueued: list[datetime], delay_ms: int | None = None
) -> None:
    """Messages on a dramatiq queue as our broker enqueues them, with these enqueue times."""
    broker = build_broker(redis_url, Settings(_env_file=None))
    try:
        for at in enqueued:
            message: Message[Any] = Message(
                queue_name=queue, actor_name="run_job", args=(1,), kwargs={}, options={},
                message_timestamp=ms(at),
            )  # fmt: skip
            broker.enqueue(message, delay=delay_ms)
    finally:
        broker.close()


def taken(redis_url: str, queue: str, count: int, dead: int = 0) -> None:
    """A worker takes the first `count` ready messages (unacked); it dead-letters `dead`."""
    broker = build_broker(redis_url, Settings(_env_file=None))
    try:
        bodies = broker.do_fetch(queue, count)
        for body in bodies[:dead]:
            broker.do_nack(queue, Message.decode(body).options["redis_message_id"])
    finally:
        broker.close()


def ingress(client: redis.Redis, appended: list[datetime], delivered: int) -> None:
    """Entries appended at these times; a consumer of the group has taken the first
    `delivered` of them and not finished them."""
    for at in appended:
        client.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: b"{}"}, id=f"{ms(at)}-0")
    client.xgroup_create(INGRESS_STREAM, INGRESS_GROUP, id="0", mkstream=True)
    if delivered:
        client.xreadgroup(INGRESS_GROUP, "worker-a", {INGRESS_STREAM: ">"}, count=delivered)


def runs(client: redis.Redis, jobs: tuple[ScheduledJob, ...], ages: dict[str, timedelta],
         now: datetime) -> None:  # fmt: skip
    """A scheduler's recorded runs: every job in `ages`, that long before `now`."""
    heartbeat.record(client, [
        heartbeat.JobRun(j.name, now - ages[j.name], j.period_s, "host-a:41", "sent=0")
        for j in jobs if j.name in ages
    ])  # fmt: skip


def claimed(db: Database, job: str, at: datetime) -> None:
    """A scheduler claimed `job`'s tick at `at` and finished it."""
    with db.sessions() as session, session.begin():
        session.add(SchedulerRun(job=job, tick=at, owner="host-b:7", started_at=at,
                                 finished_at=at, outcome="warned=0"))  # fmt: skip
