"""Ingress rate: signed `order.placed` envelopes decoded, verified, deduplicated and stored by real
`orderflow worker` processes, per ORDERFLOW_INGRESS_BATCH, against bare dramatiq's INSERT rate.

Start-up is excluded as the baseline excludes it: the envelopes wait in the stream behind the
consumer group's position until every worker process logged "ready" and its ingress consumer
is blocked in XREADGROUP; then the group is rewound to the stream's start and the consumers are
woken together (the bench's "go"). The clock runs from there until the stream is empty.
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from bench.baseline import DEFAULT_PROCESSES, DEFAULT_THREADS, BenchContext, ResultRow
from models.db import migrate
from models.db.commerce import Order, OrderLine
from models.db.engine import connect
from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from models.db.uow import UnitOfWork
from tasks.intake.ingest import IngestPolicy, ingest_one
from tasks.messages.signing import sign
from tests import factories
from workers import processes
from workers.queue.streams import INGRESS_GROUP, INGRESS_STREAM

#: Batch sizes measured: one envelope per transaction, and the default. (500 was not clearly
#: faster than 100 in trials and, at today's rate, pushes the whole run past three minutes.)
BATCHES = (1, 100)
KEY_ID = "bench-ingress"
_PIPELINE_BATCH = 1000
_BOOT_TIMEOUT_S = 60.0
_POLL_S = 0.005


def ingress_scenario(ctx: BenchContext) -> list[ResultRow]:
    """One row per batch size; each on a freshly migrated database and the same envelopes."""
    base = ctx.baseline()
    # As many envelopes as the baseline has messages (--messages): at today's 200-300/s, 10,000
    # per batch size would take the whole run to three minutes or more on a busy machine.
    envelopes = ctx.messages
    secret = secrets.token_hex(24).encode()  # this run's only; never printed
    bodies = order_bodies(envelopes, secret)
    shape = f"{DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} threads"
    rows = []
    for batch in BATCHES:
        seconds = drain_seconds(ctx, bodies, secret, batch)
        rows.append(
            ResultRow(
                "ingress",
                f"order.placed, ORDERFLOW_INGRESS_BATCH={batch}",
                envelopes,
                seconds,
                envelopes / seconds / base.insert_per_s,
                f"orderflow worker, {shape}; clock from release",
            )
        )
    return rows


def order_bodies(count: int, secret: bytes) -> list[bytes]:
    """`count` signed order.placed envelopes: distinct numbers and customers, 2 lines each."""
    bodies = []
    for seq in range(count):
        customer = {"id": f"BC-{seq:07d}", "email": f"c{seq}@example.com", "name": f"C {seq}"}
        number = f"BENCH-{seq:07d}"
        raw = factories.envelope(
            "order.placed",
            signed=False,
            number=number,
            customer=customer,
            stripe_payment_intent_id=factories.intent_for(number),
        )
        bodies.append(factories.body(sign(raw, KEY_ID, secret)))
    return bodies


def drain_seconds(ctx: BenchContext, bodies: list[bytes], secret: bytes, batch: int) -> float:
    """Enqueue first, boot the workers, release them together; time until the stream is empty."""
    if ctx.postgres_server is None or ctx.redis_server is None:
        raise RuntimeError("the ingress bench needs the runner's own servers")
    url = ctx.postgres_server.create_database(f"bench_ingress_{batch}_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    upsert_manufacturer(url, secret)
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        load_stream(client, bodies)
        with tempfile.TemporaryDirectory(prefix="orderflow-bench-ingress-") as workdir:
            env = processes.child_env(
                {
                    "ORDERFLOW_DATABASE_URL": url,
                    "ORDERFLOW_REDIS_URL": ctx.redis_url,
                    "ORDERFLOW_SIGNING_KEYS": f"{KEY_ID}:{secret.decode()}",
                    "ORDERFLOW_INGRESS_BATCH": str(batch),
                    "ORDERFLOW_DATA_DIR": workdir,
                }
            )
            elapsed = _timed_drain(client, env, Path(workdir), len(bodies))
    finally:
        client.close()
    check_effects(url, len(bodies))
    return elapsed


def _timed_drain(client: redis.Redis, env: dict[str, str], logs: Path, count: int) -> float:
    args = ["worker", "--processes", str(DEFAULT_PROCESSES), "--threads", str(DEFAULT_THREADS)]
    proc = processes.start("ingress-worker", args, env, logs)
    try:
        blocked = wait_consumers_idle(client, proc, DEFAULT_PROCESSES, _BOOT_TIMEOUT_S)
        started = time.perf_counter()
        release(client, blocked)
        wait_stream_empty(client, proc, timeout=max(60.0, count / 50))
        elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
    return elapsed


def upsert_manufacturer(database_url: str, secret: bytes) -> None:
    """The sample manufacturer, through the ingress code path (so it is in the inbox too)."""
    policy = IngestPolicy(
        max_bytes=256 * 1024,
        keys={KEY_ID: secret},
        accept_unsigned=False,
        park_for=timedelta(days=1),
    )
    body = factories.body(
        sign(factories.envelope("manufacturer.upserted", signed=False), KEY_ID, secret)
    )
    db = connect(database_url)
    try:
        with UnitOfWork(db, lambda: datetime.now(UTC)) as uow:
            outcome = ingest_one(uow, body, policy)
            uow.commit()
    finally:
        db.dispose()
    if outcome.result != "applied":
        raise RuntimeError(f"manufacturer not applied: {outcome}")


def load_stream(client: redis.Redis, bodies: list[bytes]) -> None:
    """A new stream holding `bodies`, and the consumer group positioned after them.

    The group starts at the end so booting consumers find nothing; `release` rewinds it.
    """
    client.delete(INGRESS_STREAM)  # ours: the runner started this Redis
    pipe = client.pipeline(transaction=False)
    for index, body in enumerate(bodies, start=1):
        pipe.xadd(INGRESS_STREAM, {"envelope": body})
        if index % _PIPELINE_BATCH == 0:
            pipe.execute()
    pipe.execute()
    client.xgroup_create(INGRESS_STREAM, INGRESS_GROUP, id="$")


def _blocked_readers(client: redis.Redis) -> list[int]:
    return [
        int(c["id"])
        for c in client.client_list()
        if c.get("cmd") == "xreadgroup" and "b" in str(c.get("flags", ""))
    ]


def wait_consumers_idle(
    client: redis.Redis, proc: processes.OrderflowProcess, consumers: int, timeout: float
) -> list[int]:
    """Wait until every worker process logged "ready" and its ingress consumer is blocked in
    XREADGROUP on the (seemingly empty) stream; their Redis client ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            break
        if proc.log_text().count(" ready: ") >= consumers:
            blocked = _blocked_readers(client)
            if len(blocked) >= consumers:
                return blocked
        time.sleep(_POLL_S)
    raise RuntimeError(f"ingress workers did not boot:\n{proc.log_text()[-3000:]}")


def release(client: redis.Redis, blocked: list[int]) -> None:
    """Rewind the group to the stream's start and wake the blocked consumers (the bench's "go").

    A woken XREADGROUP returns empty, and the consumer's next read finds every entry new.
    """
    raw: Any = client  # execute_command is untyped
    raw.execute_command("XGROUP", "SETID", INGRESS_STREAM, INGRESS_GROUP, "0")
    for client_id in blocked:
        client.client_unblock(client_id)


def wait_stream_empty(
    client: redis.Redis, proc: processes.OrderflowProcess, timeout: float
) -> None:
    """Entries are deleted only after their batch committed, so empty means all stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.xlen(INGRESS_STREAM) == 0:
            return
        if proc.popen.poll() is not None:
            break
        time.sleep(_POLL_S)
    raise RuntimeError(f"ingress stream not drained in {timeout} s:\n{proc.log_text()[-3000:]}")


def check_effects(database_url: str, envelopes: int) -> None:
    """A fast run that lost, quarantined or parked envelopes must not count."""
    db = connect(database_url)
    try:
        with db.sessions() as session:
            found = {
                model.__name__: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Order, OrderLine, InboxEntry, QuarantinedMessage, ParkedMessage)
            }
    finally:
        db.dispose()
    expected = {
        "Order": envelopes,
        "OrderLine": 2 * envelopes,
        "InboxEntry": envelopes + 1,
        "QuarantinedMessage": 0,
        "ParkedMessage": 0,
    }
    if found != expected:
        raise RuntimeError(f"ingress bench effects: expected {expected}, found {found}")
