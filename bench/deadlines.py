"""Confirmation scan on PostgreSQL: the scan query on 1,000 and on 1,000,000 open orders (1,000
of them overdue), then marking and staging those 1,000, then sending what that staged (an email,
a signed webhook and an outbound event each) through real `orderflow worker` processes.

Orders are seeded with one INSERT ... SELECT generate_series, not through the ingress: the
ingress has its own benchmark, and a million envelopes would take most of an hour here.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import ColumnElement, func, select, text

from bench.baseline import DEFAULT_PROCESSES, DEFAULT_THREADS, BenchContext, ResultRow
from bench.sink_process import SinkProcess
from models.db import migrate
from models.db.deadlines import overdue_query
from models.db.engine import Database, connect
from models.db.tables import Notification, OutboxJob
from models.db.uow import UnitOfWork
from scheduler.jobs import relay_outbox
from tasks.deadlines.scan import mark_overdue, run_tick
from tasks.intake.ingest import IngestPolicy, ingest_one
from tasks.messages.signing import sign
from tests import factories
from tests.fakes.webhook_receiver import WebhookReceiver
from workers import processes
from workers.adapters import smtp as mail
from workers.runtime import open_runtime
from workers.settings import Settings

OPEN_ORDERS = 1_000_000
OVERDUE = 1_000
BATCH = 200  # ORDERFLOW_DEADLINE_SCAN_BATCH's default
QUERY_RUNS = 9
KEY_ID = "bench-deadlines"
_SEED = text("""
INSERT INTO orders (number, customer_id, manufacturer_id, currency, total, payment_method,
  placed_at, confirmation_status, confirmation_deadline, confirmation_overdue,
  confirmation_remind_at, fulfillment_status, payment_status, hold_state, invoiced, paid,
  outstanding_balance, archived, lines_locked, download_allowed, tracking_numbers, updated_at)
SELECT 'BD-' || lpad(g::text, 7, '0'), 'BENCH-C', 'oem-acme', 'EUR', 1000, 'on_account',
  CAST(:now AS timestamptz) - interval '1 day', 'new',
  CASE WHEN g <= CAST(:overdue AS integer) THEN CAST(:now AS timestamptz) - g * interval '1 second'
       ELSE CAST(:now AS timestamptz) + interval '1 hour' + (g % 43200) * interval '1 minute' END,
  false,
  CASE WHEN g <= CAST(:overdue AS integer) THEN NULL
       ELSE CAST(:now AS timestamptz) + interval '30 minutes' + (g % 43200) * interval '1 minute'
  END,
  'unfulfilled', 'pending', 'none', 0, 0, 0, false, false, false, CAST('[]' AS json),
  CAST(:now AS timestamptz)
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
""")


def deadlines_scenario(ctx: BenchContext) -> list[ResultRow]:
    """Rows: scan query at two table sizes and with nothing due, mark + stage, send."""
    if ctx.postgres_server is None:
        raise RuntimeError("the deadlines bench needs the runner's own PostgreSQL")
    base = ctx.baseline()
    secret = secrets.token_hex(24)  # this run's only; never printed
    url = ctx.postgres_server.create_database(f"bench_deadlines_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    now = datetime.now(UTC)
    db = connect(url)
    try:
        with SinkProcess() as sink, WebhookReceiver.start(secret.encode()) as receiver:
            _setup(db, secret, receiver.url)
            rows = _query_rows(db, now)
            print(explain(db, now))
            worker = _start_worker(url, ctx.redis_url, sink.url, secret)
            try:
                settings = Settings(database_url=url, redis_url=ctx.redis_url, _env_file=None)
                rows.extend(_mark_and_send(db, now, settings, base.insert_per_s,
                                           (sink, receiver)))  # fmt: skip
            finally:
                worker.terminate()
    finally:
        db.dispose()
    return rows


def _setup(db: Database, secret: str, webhook_url: str) -> None:
    maker = factories.envelope("manufacturer.upserted", signed=False,
                               notify_email="oem@bench.example",
                               notify_webhook_url=webhook_url)  # fmt: skip
    policy = IngestPolicy(max_bytes=256 * 1024, keys={KEY_ID: secret.encode()},
                          accept_unsigned=False, park_for=timedelta(days=1))  # fmt: skip
    with UnitOfWork(db, lambda: datetime.now(UTC)) as uow:
        outcome = ingest_one(uow, factories.body(sign(maker, KEY_ID, secret.encode())), policy)
        uow.session.execute(text("INSERT INTO customers (id, email, name) "
                                 "VALUES ('BENCH-C', 'bench@example.com', 'Bench')"))  # fmt: skip
        uow.commit()
    if outcome.result != "applied":
        raise RuntimeError(f"manufacturer not applied: {outcome}")


def seed(db: Database, now: datetime, first: int, last: int) -> float:
    """Orders `first`..`last` (the first OVERDUE of all are past their deadline); seconds."""
    started = time.perf_counter()
    with db.engine.begin() as conn:
        params = {"now": now, "overdue": OVERDUE, "first": first, "last": last}
        conn.execute(_SEED, params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE orders")
    return time.perf_counter() - started


def scan_query_seconds(db: Database, now: datetime, limit: int) -> tuple[float, int]:
    """Median time of the scan's query (locks included, rolled back) and the rows it returns."""
    times, found = [], 0
    for _ in range(QUERY_RUNS):
        with db.engine.connect() as conn, conn.begin() as tx:
            started = time.perf_counter()
            found = len(conn.execute(overdue_query(now, limit)).all())
            times.append(time.perf_counter() - started)
            tx.rollback()
    return statistics.median(times), found


def explain(db: Database, now: datetime) -> str:
    """EXPLAIN ANALYZE of one scan batch on the full table (rolled back)."""
    compiled = overdue_query(now, BATCH).compile(dialect=db.engine.dialect)
    with db.engine.connect() as conn, conn.begin() as tx:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + compiled.string,
                                    compiled.params).all()  # fmt: skip
        tx.rollback()
    return "\n".join(str(row[0]) for row in plan)


def _query_row(case: str, seconds: float, found: int, note: str) -> ResultRow:
    # A query is not a message rate: no ratio; the seconds column is too coarse, so ms go first.
    return ResultRow("deadlines", case, found, seconds, None, f"{seconds * 1000:.2f} ms; {note}")


def _query_rows(db: Database, now: datetime) -> list[ResultRow]:
    seconds_small = seed(db, now, 1, OVERDUE)
    small, found_small = scan_query_seconds(db, now, OVERDUE)
    seconds_big = seed(db, now, OVERDUE + 1, OPEN_ORDERS)
    big, found_big = scan_query_seconds(db, now, OVERDUE)
    batch, found_batch = scan_query_seconds(db, now, BATCH)
    note = f"median of {QUERY_RUNS}; SELECT id ... FOR UPDATE SKIP LOCKED, rolled back"
    return [
        _query_row(f"scan query, {OVERDUE:,} open orders, all due", small, found_small,
                   f"{note}; seeded in {seconds_small:.1f} s"),
        _query_row(f"scan query, {OPEN_ORDERS:,} open orders, {OVERDUE:,} due", big, found_big,
                   f"{note}; seeded in {seconds_big:.1f} s"),
        _query_row(f"scan query, {OPEN_ORDERS:,} open, one batch of {BATCH}", batch,
                   found_batch, note),
    ]  # fmt: skip


def _start_worker(
    url: str, redis_url: str, smtp_url: str, secret: str
) -> processes.OrderflowProcess:
    env = processes.child_env({
        "ORDERFLOW_DATABASE_URL": url, "ORDERFLOW_REDIS_URL": redis_url,
        "ORDERFLOW_SMTP_URL": smtp_url, "ORDERFLOW_OEM_WEBHOOK_SECRET": secret,
        "ORDERFLOW_DATA_DIR": tempfile.mkdtemp(prefix="orderflow-bench-deadlines-"),
    })  # fmt: skip
    args = ["worker", "--processes", str(DEFAULT_PROCESSES), "--threads", str(DEFAULT_THREADS)]
    proc = processes.start("deadlines-worker", args, env, Path(env["ORDERFLOW_DATA_DIR"]))
    deadline = time.monotonic() + 60
    while proc.log_text().count(" ready: ") < DEFAULT_PROCESSES:
        if time.monotonic() > deadline or proc.popen.poll() is not None:
            raise RuntimeError(f"bench worker did not boot:\n{proc.log_text()[-3000:]}")
        time.sleep(0.05)
    return proc


def _mark_and_send(
    db: Database, now: datetime, settings: Settings, insert_per_s: float,
    fakes: tuple[SinkProcess, WebhookReceiver],
) -> list[ResultRow]:  # fmt: skip
    # Marking and staging commit outbox rows without publishing them (as if Redis were away);
    # then the relay publishes them, and the clock runs until every job is done.
    started = time.perf_counter()
    done = run_tick(lambda: UnitOfWork(db, lambda: now), now, mark_overdue, OVERDUE, BATCH)
    mark_s = time.perf_counter() - started
    if done.taken != OVERDUE or done.staged != 2 * OVERDUE:
        raise RuntimeError(f"deadlines bench marked {done}")
    idle, _ = scan_query_seconds(db, now, BATCH)
    jobs = _count(db, OutboxJob)
    rt = open_runtime(settings)
    try:
        started = time.perf_counter()
        relay_outbox(rt, datetime.now(UTC))
        hooks_s, all_s = _wait_sent(db, jobs, *fakes, started=started)
    finally:
        rt.close()
    shape = f"orderflow worker, {DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} threads"
    return [
        _query_row(f"scan query, {OPEN_ORDERS:,} open, nothing due", idle, 0,
                   "the query every scan tick runs once the backlog is gone"),
        ResultRow("deadlines", f"mark {OVERDUE:,} overdue + stage their messages", OVERDUE,
                  mark_s, OVERDUE / mark_s / insert_per_s,
                  f"in-process, {OVERDUE // BATCH} transactions of {BATCH}; per order: mark, "
                  "timeline, email + webhook rows, 3 outbox jobs"),
        ResultRow("deadlines", f"send: all {OVERDUE:,} webhooks at the receiver", OVERDUE,
                  hooks_s, OVERDUE / hooks_s / insert_per_s,
                  f"{shape}; from the relay's publish; the webhooks share their queue with "
                  "the emails, so they wait behind them"),
        ResultRow("deadlines", f"send: all {jobs:,} jobs done ({OVERDUE:,} emails, webhooks, "
                  "events)", jobs, all_s, jobs / all_s / insert_per_s,
                  f"{shape}; from the relay's publish; see the SMTP sink's own rate below"),
        _sink_rate(fakes[0], insert_per_s),
    ]  # fmt: skip


def _sink_rate(sink: SinkProcess, insert_per_s: float) -> ResultRow:
    """The local SMTP sink's own rate (8 client threads, no orderflow): what bounds the emails."""
    target, before, count = mail.parse_smtp_url(sink.url), sink.count(), 300

    def send(seq: int) -> None:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = "bench@example.com", "x@example.com", "s"
        email["Message-ID"] = f"<bench-{seq}@example.com>"
        email.set_content("hello")
        email.add_alternative("<p>hello</p>", subtype="html")
        mail.send(target, email)

    started = time.perf_counter()
    with ThreadPoolExecutor(DEFAULT_PROCESSES * DEFAULT_THREADS) as pool:
        list(pool.map(send, range(count)))
    seconds = time.perf_counter() - started
    if not _until(lambda: sink.count() - before >= count, 10):
        raise RuntimeError("the SMTP sink lost bench mail")
    note = "smtplib from 8 threads to `python -m workers.demo.smtp_sink`, no orderflow"
    return ResultRow("deadlines", f"reference: the local SMTP sink alone, {count} mails", count,
                     seconds, count / seconds / insert_per_s, note)  # fmt: skip


def _count(
    db: Database, model: type[OutboxJob] | type[Notification], *where: ColumnElement[bool]
) -> int:
    with db.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(session.scalar(query) or 0)


def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _wait_sent(
    db: Database, jobs: int, sink: SinkProcess, receiver: WebhookReceiver, *, started: float
) -> tuple[float, float]:
    """Seconds from `started` until every webhook arrived, and until every job was done."""
    timeout = max(120.0, jobs / 10)
    _until(lambda: receiver.count() >= OVERDUE, timeout)
    hooks_s = time.perf_counter() - started
    _until(lambda: _count(db, OutboxJob, OutboxJob.status == "done") >= jobs, timeout)
    all_s = time.perf_counter() - started
    sent = _count(db, Notification, Notification.status == "sent")
    if (sink.count(), receiver.count(), sent) != (OVERDUE, OVERDUE, 2 * OVERDUE):
        raise RuntimeError(f"deadlines bench: {sink.count()} emails, {receiver.count()} "
                           f"webhooks, {sent} notifications sent")  # fmt: skip
    return hooks_s, all_s
