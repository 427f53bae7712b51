"""Bulk paid backlog on PostgreSQL: 100,000 eligible orders with 3 lines each.

From the XADD of one `paid_backlog.requested` (all eligible) until the bulk job is done, through
real `orderflow worker` processes: paid backlog SKUs created per second, the peak RSS of each
worker process (psutil, sampled every 50 ms), and the rate against (a) a naive per-order ORM
loop (one transaction per order, measured in this process on a sample of the same orders) and
(b) bare dramatiq's one-INSERT rate, all from the same run.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import redis
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bench.baseline import DEFAULT_PROCESSES, DEFAULT_THREADS, BenchContext, ResultRow
from bench.ingress import KEY_ID, load_stream, release, wait_consumers_idle
from models.db import migrate
from models.db.bulk_jobs import BulkJob
from models.db.commerce import BacklogSku, DeliveryNote, Order, OrderLine
from models.db.engine import Database, connect
from models.domain.backlog import EligibilityFacts, unmet_conditions
from tasks.messages.signing import sign
from tests import factories
from tests.backlog_seed import LINES_PER_ORDER, seed_paid_card_orders
from workers import processes

ORDERS, NAIVE_ORDERS = 100_000, 2_000
TARGET_VS_NAIVE, TARGET_RSS_MB = 20.0, 200.0
_MB = 1024 * 1024


def backlog_scenario(ctx: BenchContext) -> list[ResultRow]:
    """The bulk job through workers, and the naive loop; ratios from this run."""
    if ctx.postgres_server is None or ctx.redis_server is None:
        raise RuntimeError("the backlog bench needs the runner's own servers")
    base = ctx.baseline()
    bulk = _bulk(ctx, _seeded(ctx, ORDERS))
    naive_seconds = _naive_seconds(_seeded(ctx, NAIVE_ORDERS))
    naive_rows = NAIVE_ORDERS * LINES_PER_ORDER
    rows = ORDERS * LINES_PER_ORDER
    vs_naive = (rows / bulk.seconds) / (naive_rows / naive_seconds)
    met = "met" if vs_naive >= TARGET_VS_NAIVE and bulk.peak_mb < TARGET_RSS_MB else "MISSED"
    shape = f"orderflow worker, {DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} threads"
    return [
        ResultRow("backlog", f"paid backlog, {ORDERS} orders x {LINES_PER_ORDER} lines", rows,
                  bulk.seconds, rows / bulk.seconds / base.insert_per_s,
                  f"SKUs/s; {vs_naive:.1f}x the naive loop; peak worker RSS {bulk.peak_mb:.0f} MB "
                  f"(idle {bulk.idle_mb:.0f} MB); targets >= {TARGET_VS_NAIVE:.0f}x and < "
                  f"{TARGET_RSS_MB:.0f} MB {met}; {bulk.chunks} chunks; {shape}, bulk queue"),
        ResultRow("backlog", f"naive per-order ORM loop, {NAIVE_ORDERS} orders", naive_rows,
                  naive_seconds, naive_rows / naive_seconds / base.insert_per_s,
                  "SKUs/s; one transaction per order, in process; same seeded orders"),
    ]  # fmt: skip


def _seeded(ctx: BenchContext, count: int) -> str:
    assert ctx.postgres_server is not None
    url = ctx.postgres_server.create_database(f"bench_backlog_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    db = connect(url)
    try:
        seed_paid_card_orders(db, count, prefix="BL")
    finally:
        db.dispose()
    return url


@dataclass(frozen=True)
class BulkRun:
    """What the bulk run measured."""

    seconds: float
    peak_mb: float
    idle_mb: float
    chunks: int


class RssSampler:
    """Samples the RSS of a supervisor's worker processes (restarts included) in a thread."""

    def __init__(self, supervisor_pid: int) -> None:
        self._root = psutil.Process(supervisor_pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        """The largest RSS of one worker process now, in bytes."""
        largest = 0
        for child in self._root.children():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                    largest = max(largest, int(child.memory_info().rss))
        return largest

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _bulk(ctx: BenchContext, url: str) -> BulkRun:
    secret = secrets.token_hex(24).encode()  # this run's only; never printed
    raw = factories.envelope("paid_backlog.requested", signed=False, order_numbers=None,
                             all_eligible=True)  # fmt: skip
    client = redis.Redis.from_url(ctx.redis_url)
    db = connect(url)
    try:
        load_stream(client, [factories.body(sign(raw, KEY_ID, secret))])
        with tempfile.TemporaryDirectory(prefix="of-bench-backlog-") as work:
            env = processes.child_env({
                "ORDERFLOW_DATABASE_URL": url, "ORDERFLOW_REDIS_URL": ctx.redis_url,
                "ORDERFLOW_SIGNING_KEYS": f"{KEY_ID}:{secret.decode()}",
                "ORDERFLOW_DATA_DIR": work,
            })  # fmt: skip
            args = ["worker", "--processes", str(DEFAULT_PROCESSES),
                    "--threads", str(DEFAULT_THREADS), "--queue", "bulk"]  # fmt: skip
            proc = processes.start("backlog-worker", args, env, Path(work))
            try:
                return _timed(client, db, proc)
            finally:
                proc.terminate()
    finally:
        client.close()
        db.dispose()


def _timed(client: redis.Redis, db: Database, proc: processes.OrderflowProcess) -> BulkRun:
    blocked = wait_consumers_idle(client, proc, DEFAULT_PROCESSES, 60.0)
    with RssSampler(proc.pid) as rss:
        idle = rss.sample()
        started = time.perf_counter()
        release(client, blocked)
        deadline = started + 900
        while (job := _job(db)) is None or job.status != "done":
            if time.perf_counter() > deadline or proc.popen.poll() is not None:
                raise RuntimeError(f"bulk job not done in time:\n{proc.log_text()[-3000:]}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    if job.skus_created != ORDERS * LINES_PER_ORDER:
        raise RuntimeError(f"expected {ORDERS * LINES_PER_ORDER} SKUs, job made {job.skus_created}")
    return BulkRun(elapsed, rss.peak / _MB, idle / _MB, job.chunks_total)


def _job(db: Database) -> BulkJob | None:
    with db.sessions() as session:
        return session.scalars(select(BulkJob).limit(1)).one_or_none()


def _naive_seconds(url: str) -> float:
    """What a straightforward implementation does: per order, load it, check it, add a paid
    backlog SKU per line, zero its regular backlog, lock its lines, commit."""
    db = connect(url)
    try:
        with db.sessions() as session:
            ids = list(session.scalars(select(Order.id).order_by(Order.id)))
        started = time.perf_counter()
        for order_id in ids:
            with db.sessions() as session, session.begin():
                _naive_one(session, order_id)
        elapsed = time.perf_counter() - started
    finally:
        db.dispose()
    return elapsed


def _naive_one(session: Session, order_id: int) -> None:
    order = session.get(Order, order_id, with_for_update=True)
    assert order is not None
    paid = session.scalar(select(exists().where(BacklogSku.order_id == order_id,
                                                BacklogSku.kind == "paid")))  # fmt: skip
    noted = session.scalar(select(exists().where(DeliveryNote.order_id == order_id)))
    facts = EligibilityFacts(order.payment_method, order.payment_status, order.paid, order.total,
                             order.confirmation_status, order.fulfillment_status, order.archived,
                             bool(paid), bool(noted))  # fmt: skip
    if unmet_conditions(facts):
        return
    now = datetime.now(UTC)
    for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)):
        session.add(BacklogSku(order_id=order_id, line_id=line.id, sku=line.sku, kind="paid",
                               quantity=line.quantity, remaining=line.quantity,
                               unit_price=line.unit_price, created_at=now))  # fmt: skip
    regular = select(BacklogSku).where(BacklogSku.order_id == order_id,
                                       BacklogSku.kind == "regular")  # fmt: skip
    for row in session.scalars(regular):
        row.remaining = 0
    order.lines_locked = True
