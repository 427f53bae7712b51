"""Bulk paid backlog under chaos: 20,000 seeded orders, a request for every eligible one delivered
twice (the same envelope twice, and a copy under a new id), real `orderflow worker` processes
SIGKILLed twice mid-job, a scheduler re-driving lost work. Counted in the database: one paid
backlog SKU per eligible line, none lost, none twice."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
import redis
from sqlalchemy import func, select

from models.db.bulk_jobs import BulkJob
from models.db.commerce import BacklogSku, Order, OrderLine
from models.db.machinery import OutboxJob, TimelineEvent
from tasks.outbox.egress import PUBLISH_BATCH_JOB
from tests import factories as f
from tests.backlog_seed import LINES_PER_ORDER, seed_paid_card_orders
from tests.e2e.conftest import Stack
from tests.support import wait_until
from workers import processes
from workers.queue import client as producer

pytestmark = pytest.mark.chaos
ORDERS, UNCONFIRMED_EVERY = 20_000, 10
ELIGIBLE = ORDERS - ORDERS // UNCONFIRMED_EVERY
KILL_AT = (0.2, 0.55)  # share of the expected paid SKUs created when the workers are killed
SETTINGS: dict[str, Any] = {"signing_keys": f.SIGNING_KEYS_SETTING,
                            "outbox_redeliver_after_s": 10, "scheduler_tick_s": 0.5}  # fmt: skip


@dataclass(frozen=True)
class Tally:
    """Paid backlog SKUs judged against the eligible lines."""

    attempted: int  # eligible lines
    effects: int  # paid backlog SKUs
    lost: int  # eligible lines without one
    duplicated: int  # SKUs beyond one per line

    def line(self) -> str:
        return (f"attempted={self.attempted} effects={self.effects} lost={self.lost} "
                f"duplicated={self.duplicated}")  # fmt: skip


def _count(stack: Stack, model: type, *where: Any) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _tally(stack: Stack) -> Tally:
    eligible_lines = (
        select(OrderLine.id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.confirmation_status == "confirmed")
    )
    paid = BacklogSku.kind == "paid"
    with stack.rt.db.sessions() as session:
        attempted = int(
            session.scalar(select(func.count()).select_from(eligible_lines.subquery())) or 0
        )
        effects = _count(stack, BacklogSku, paid)
        covered = session.scalar(select(func.count(func.distinct(BacklogSku.line_id)))
                                 .where(paid, BacklogSku.line_id.in_(eligible_lines)))  # fmt: skip
    return Tally(attempted, effects, attempted - int(covered or 0), effects - int(covered or 0))


def _event_numbers(stack: Stack) -> tuple[int, int]:
    """(events staged, distinct orders among them) over every batch of `paid_backlog.created`."""
    with stack.rt.db.sessions() as session:
        query = select(OutboxJob.payload).where(OutboxJob.job == PUBLISH_BATCH_JOB.name)
        numbers = [e["data"]["number"] for p in session.scalars(query) for e in p["events"]]
    return len(numbers), len(set(numbers))


def _worker(stack: Stack) -> processes.OrderflowProcess:
    # The bulk queue only: the egress event batches wait in the outbox (counted there).
    args = ["worker", "--processes", "2", "--threads", "4", "--queue", "bulk"]
    proc = processes.start("worker", args, stack.env, stack.logs)
    stack.started.append(proc)
    assert wait_until(lambda: proc.log_text().count(" ready: ") >= 2, 60), proc.log_text()
    return proc


def _kill_children(proc: processes.OrderflowProcess) -> int:
    """SIGKILL every worker process under the supervisor (which restarts them)."""
    killed = 0
    for child in psutil.Process(proc.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                child.kill()
                killed += 1
    return killed


def _jobs(stack: Stack) -> list[BulkJob]:
    with stack.rt.db.sessions() as session:
        jobs = list(session.scalars(select(BulkJob).order_by(BulkJob.id)))
        session.expunge_all()
        return jobs


def _run_and_kill(stack: Stack, proc: processes.OrderflowProcess, timeout_s: float) -> list[int]:
    """Poll (bounded) until both jobs are done, killing the workers at each KILL_AT share."""
    kills: list[int] = []
    expected = ELIGIBLE * LINES_PER_ORDER
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        made = _count(stack, BacklogSku, BacklogSku.kind == "paid")
        if len(kills) < len(KILL_AT) and made >= KILL_AT[len(kills)] * expected:
            kills.append(_kill_children(proc))
        jobs = _jobs(stack)
        if len(jobs) == 2 and all(j.status == "done" for j in jobs):
            break
        time.sleep(0.2)
    return kills


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_a_bulk_job_survives_two_sigkills_and_a_doubled_request(stack: Stack) -> None:
    # Given 20,000 captured card orders, 18,000 of them confirmed (3 lines each), a scheduler
    # and a worker of two processes
    seed_paid_card_orders(stack.rt.db, ORDERS, prefix="CH", unconfirmed_every=UNCONFIRMED_EVERY)
    stack.start("scheduler", "scheduler")
    proc = _worker(stack)
    # When the request for every eligible order is delivered twice, plus a copy under a new id,
    # and the worker's processes are SIGKILLed twice while the chunks run
    first = f.envelope("paid_backlog.requested", order_numbers=None, all_eligible=True)
    copy = f.envelope("paid_backlog.requested", order_numbers=None, all_eligible=True)
    client = redis.Redis.from_url(stack.settings.redis_url)
    producer.publish(client, [first, first, copy])
    kills = _run_and_kill(stack, proc, 170)
    tally = _tally(stack)
    print(tally.line())
    # Then every eligible line has exactly one paid backlog SKU
    assert (tally.attempted, tally.effects, tally.lost, tally.duplicated) == (
        ELIGIBLE * LINES_PER_ORDER, ELIGIBLE * LINES_PER_ORDER, 0, 0,
    )  # fmt: skip
    assert kills == [2, 2]
    # And two jobs ran (the repeated envelope made none), between them creating each order once
    jobs = _jobs(stack)
    assert [(j.status, j.chunks_done == j.chunks_total) for j in jobs] == [("done", True)] * 2
    assert sum(j.created for j in jobs) == ELIGIBLE
    assert sum(j.already_created for j in jobs) == sum(j.orders_total for j in jobs) - ELIGIBLE
    assert sum(j.skipped + j.unknown for j in jobs) == 0
    # And nothing a chunk does happened twice: one event and one timeline entry per order, no
    # regular quantity left beside the paid one, every order's lines locked
    assert _event_numbers(stack) == (ELIGIBLE, ELIGIBLE)
    assert _count(stack, TimelineEvent, TimelineEvent.kind == "paid_backlog.created") == ELIGIBLE
    assert _count(stack, BacklogSku, BacklogSku.kind == "regular", BacklogSku.remaining > 0) == 0
    assert _count(stack, Order, Order.lines_locked.is_(True)) == ELIGIBLE
    client.close()
