"""Restock release: 10,000 backorders wait on one SKU; one restock fills 5,000 of them.

Two rows: the restock's transaction alone (release, reserve, decide, stage 5,000 events and
emails), and end to end through real `orderflow worker` processes, from the XADD of the
restock until every `fulfillment.submitted` is on the egress stream and every email is at a
local SMTP sink. Each is reported per backorder against bare dramatiq's INSERT rate.
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import func, insert, select

from bench.baseline import DEFAULT_PROCESSES, DEFAULT_THREADS, BenchContext, ResultRow
from bench.ingress import KEY_ID, load_stream, release, wait_consumers_idle
from models.db import migrate
from models.db.commerce import Customer, Manufacturer, Order, OrderLine
from models.db.engine import connect
from models.db.machinery import Notification, OutboxJob
from models.db.uow import UnitOfWork
from tasks.intake.ingest import IngestPolicy, ingest_batch
from tasks.messages.signing import sign
from tasks.outbox.egress import PUBLISH_JOB
from tests import factories
from workers import processes
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import EGRESS_STREAM

WAITING, RECEIVED = 10_000, 5_000
SKU = "BENCH-HOT"
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
_CUSTOMERS = 100


def backorders_scenario(ctx: BenchContext) -> list[ResultRow]:
    """Both rows; each run starts from its own freshly seeded database."""
    if ctx.postgres_server is None or ctx.redis_server is None:
        raise RuntimeError("the backorders bench needs the runner's own servers")
    base = ctx.baseline()
    secret = secrets.token_hex(24).encode()  # this run's only; never printed
    raw = factories.envelope("inventory.received", signed=False, sku=SKU, quantity=RECEIVED)
    body = factories.body(sign(raw, KEY_ID, secret))
    alone = _transaction_seconds(_seeded(ctx), body, secret)
    end_to_end = _end_to_end_seconds(ctx, _seeded(ctx), body, secret)
    note = f"{WAITING} waiting, 1 x {SKU} each; skip_blocked; PostgreSQL"
    return [
        ResultRow("backorders", f"restock transaction, {RECEIVED} released", RECEIVED, alone,
                  RECEIVED / alone / base.insert_per_s, f"in-process ingest; {note}"),
        ResultRow("backorders", f"restock to egress + email, {RECEIVED} released", RECEIVED,
                  end_to_end, RECEIVED / end_to_end / base.insert_per_s,
                  f"orderflow worker, {DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} "
                  f"threads, SMTP sink; {note}"),
    ]  # fmt: skip


def _seeded(ctx: BenchContext) -> str:
    """A fresh database holding WAITING backorders of one unit of SKU, oldest first."""
    assert ctx.postgres_server is not None
    url = ctx.postgres_server.create_database(f"bench_backorders_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    db = connect(url)
    try:
        with db.sessions() as session, session.begin():
            session.add(Manufacturer(id="m", name="M", holiday_country="DE", updated_at=T0))
            session.add_all(Customer(id=f"c{i}", email=f"c{i}@example.com", name=f"C {i}")
                            for i in range(_CUSTOMERS))  # fmt: skip
            session.flush()
            rows = [{"number": f"BB{i:06d}-backorder", "customer_id": f"c{i % _CUSTOMERS}",
                     "manufacturer_id": "m", "currency": "EUR", "payment_method": "offline",
                     "fulfillment_status": "backordered", "total": 1000,
                     "placed_at": T0 + timedelta(seconds=i), "updated_at": T0}
                    for i in range(WAITING)]  # fmt: skip
            ids = session.scalars(insert(Order).returning(Order.id), rows).all()
            session.execute(insert(OrderLine), [
                {"order_id": i, "position": 1, "sku": SKU, "quantity": 1, "unit_price": 1000,
                 "is_insert": False} for i in ids
            ])  # fmt: skip
    finally:
        db.dispose()
    return url


def _transaction_seconds(url: str, body: bytes, secret: bytes) -> float:
    db = connect(url)
    try:
        started = time.perf_counter()
        with UnitOfWork(db, lambda: datetime.now(UTC)) as uow:
            policy = IngestPolicy(256 * 1024, {KEY_ID: secret}, False, timedelta(hours=1))
            outcomes = ingest_batch(uow, [body], policy)
            uow.commit()
        elapsed = time.perf_counter() - started
        assert [o.result for o in outcomes] == ["applied"], outcomes
        with db.sessions() as session:
            released = session.scalar(select(func.count()).select_from(Order).where(
                Order.fulfillment_status == "processing"))  # fmt: skip
            events = session.scalar(select(func.count()).select_from(OutboxJob).where(
                OutboxJob.job == PUBLISH_JOB.name))  # fmt: skip
            emails = session.scalar(select(func.count()).select_from(Notification))
        assert (released, events, emails) == (RECEIVED, RECEIVED, RECEIVED)
    finally:
        db.dispose()
    return elapsed


def _end_to_end_seconds(ctx: BenchContext, url: str, body: bytes, secret: bytes) -> float:
    client = redis.Redis.from_url(ctx.redis_url)
    client.delete(EGRESS_STREAM, *client.keys(f"{EGRESS_STREAM}:sent:*"))
    try:
        load_stream(client, [body])
        with SmtpSink.start() as sink, tempfile.TemporaryDirectory(prefix="of-bench-bo-") as work:
            env = processes.child_env({
                "ORDERFLOW_DATABASE_URL": url, "ORDERFLOW_REDIS_URL": ctx.redis_url,
                "ORDERFLOW_SIGNING_KEYS": f"{KEY_ID}:{secret.decode()}",
                "ORDERFLOW_SMTP_URL": sink.url, "ORDERFLOW_DATA_DIR": work,
            })  # fmt: skip
            args = ["worker", "--processes", str(DEFAULT_PROCESSES),
                    "--threads", str(DEFAULT_THREADS)]  # fmt: skip
            proc = processes.start("backorders-worker", args, env, Path(work))
            try:
                blocked = wait_consumers_idle(client, proc, DEFAULT_PROCESSES, 60.0)
                started = time.perf_counter()
                release(client, blocked)
                deadline = started + 600
                while client.xlen(EGRESS_STREAM) < RECEIVED or sink.count() < RECEIVED:
                    if time.perf_counter() > deadline or proc.popen.poll() is not None:
                        raise RuntimeError(f"not submitted in time:\n{proc.log_text()[-3000:]}")
                    time.sleep(0.01)
                elapsed = time.perf_counter() - started
                time.sleep(1.0)  # anything more than RECEIVED would be a duplicate
                assert (client.xlen(EGRESS_STREAM), sink.count()) == (RECEIVED, RECEIVED)
            finally:
                proc.terminate()
    finally:
        client.close()
    return elapsed
