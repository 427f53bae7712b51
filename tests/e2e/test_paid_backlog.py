"""Paid backlog end to end: 2,000 orders of mixed eligibility built through the ingress stream as
producers would, a real `orderflow worker` applying them and running the bulk chunks. The report
names exactly the unmet conditions of each order; the created rows are exactly the eligible
lines; a repeated request creates nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.db.bulk_jobs import BulkJob, BulkJobResult
from models.db.commerce import BacklogSku, Order
from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from models.domain.backlog import EligibilityFacts, outcome_for, reasons_text, unmet_conditions
from tests import factories as f
from tests.backlog_support import LINES, TOTAL, confirmed, payment, placed, request
from tests.e2e.conftest import Stack
from tests.support import wait_until
from workers import processes
from workers.queue import client as producer
from workers.queue.streams import EGRESS_STREAM

pytestmark = pytest.mark.e2e
SIGNED = {"signing_keys": f.SIGNING_KEYS_SETTING, "outbox_redeliver_after_s": 5}
ORDERS = 2000


def _facts(i: int) -> EligibilityFacts:
    """How order i is built: each condition fails for some orders, alone or with others."""
    card, pay = i % 7 != 1, i % 11
    status, paid = {3: ("authorized" if card else "pending", 0), 4: ("partially_paid", 1000),
                    5: ("refunded", 0), 6: ("partially_refunded", TOTAL - 100)}.get(
        pay, ("paid", TOTAL))  # fmt: skip
    return EligibilityFacts(
        payment_method="stripe_card" if card else "on_account", payment_status=status,
        paid=paid, total=TOTAL, confirmation_status="new" if i % 5 == 2 else "confirmed",
        fulfillment_status="cancelled" if i % 13 == 6 else "unfulfilled",
        archived=i % 17 == 8, has_paid_backlog=False,
        # A note is made only where there is backlog: on confirmed orders.
        has_delivery_note=i % 23 == 10 and i % 5 != 2,
    )  # fmt: skip


def _number(i: int) -> str:
    return f"E2E{i:05d}"


def _updates(i: int, facts: EligibilityFacts) -> Iterator[dict[str, Any]]:
    number = _number(i)
    if facts.confirmation_status == "confirmed":
        yield confirmed(number)
    amounts = {3: [], 4: [1000], 5: [TOTAL, -TOTAL], 6: [TOTAL, -100]}.get(i % 11, [TOTAL])
    yield from (payment(number, amount) for amount in amounts)
    if facts.fulfillment_status == "cancelled":
        yield f.envelope("order.cancelled", number=number, notify_customer=False)
    if facts.archived:
        yield f.envelope("order.archived", number=number)


def _settled(stack: Stack, sent: int) -> bool:
    """Every envelope sent so far applied (or refused), none waiting."""
    with stack.rt.db.sessions() as session:
        applied = session.scalar(select(func.count()).select_from(InboxEntry)) or 0
        refused = session.scalar(select(func.count()).select_from(QuarantinedMessage)) or 0
        parked = session.scalar(select(func.count()).select_from(ParkedMessage)) or 0
    return applied + refused == sent and parked == 0


def _publish(stack: Stack, client: redis.Redis, envelopes: list[dict[str, Any]]) -> None:
    before = _count_sent(stack)
    producer.publish(client, envelopes)
    assert wait_until(lambda: _settled(stack, before + len(envelopes)), 120), _state(stack)


def _state(stack: Stack) -> dict[str, Any]:
    with stack.rt.db.sessions() as session:
        return {
            "inbox": session.scalar(select(func.count()).select_from(InboxEntry)),
            "quarantine": sorted(session.scalars(select(QuarantinedMessage.reason))),
            "parked": session.scalar(select(func.count()).select_from(ParkedMessage)),
            "log": stack.started[0].log_text()[-3000:],
        }


def _count_sent(stack: Stack) -> int:
    with stack.rt.db.sessions() as session:
        applied = session.scalar(select(func.count()).select_from(InboxEntry)) or 0
        refused = session.scalar(select(func.count()).select_from(QuarantinedMessage)) or 0
    return int(applied) + int(refused)


def _job_done(stack: Stack, client: redis.Redis, raw: dict[str, Any]) -> BulkJob:
    _publish(stack, client, [raw])
    with stack.rt.db.sessions() as session:
        job_id = session.scalars(select(BulkJob.id).where(BulkJob.envelope_id == raw["id"])).one()

    def done() -> bool:
        with stack.rt.db.sessions() as session:
            return session.get(BulkJob, job_id).status == "done"  # type: ignore[union-attr]

    assert wait_until(done, 120)
    with stack.rt.db.sessions() as session:
        job = session.get(BulkJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _results(stack: Stack, job_id: int) -> dict[str, tuple[str, str]]:
    with stack.rt.db.sessions() as session:
        query = select(BulkJobResult).where(BulkJobResult.job_id == job_id)
        return {r.number: (r.outcome, r.reasons) for r in session.scalars(query)}


def _paid_rows(stack: Stack) -> set[tuple[str, str, int]]:
    with stack.rt.db.sessions() as session:
        query = (select(Order.number, BacklogSku.sku, BacklogSku.quantity)
                 .join(Order, Order.id == BacklogSku.order_id)
                 .where(BacklogSku.kind == "paid"))  # fmt: skip
        return {(str(n), str(s), int(q)) for n, s, q in session.execute(query)}


def _announced(client: redis.Redis) -> list[str]:
    """Order numbers of the `paid_backlog.created` events on the egress stream."""
    entries: Any = client.xrange(EGRESS_STREAM)  # redis-py types RESP2 and RESP3 at once
    events = [json.loads(fields[b"event"]) for _, fields in entries]
    return [e["data"]["number"] for e in events if e["type"] == "paid_backlog.created"]


def _worker(stack: Stack) -> None:
    # Payments and mail are not what this test counts (no Stripe, no SMTP here): only the
    # ingress, the bulk chunks and the egress events run.
    args = ["worker", "--processes", "2", "--threads", "4", "--queue", "default",
            "--queue", "bulk"]  # fmt: skip
    proc = processes.start("worker", args, stack.env, stack.logs)
    stack.started.append(proc)
    assert wait_until(lambda: proc.log_text().count(" ready: ") >= 2, 60), proc.log_text()


def _build(stack: Stack, client: redis.Redis) -> tuple[dict[str, EligibilityFacts], BulkJob]:
    """Place, confirm, pay, refund, cancel, archive and deliver as `_facts` says, then request
    paid backlog for every 19th order; the facts as they now are, and that first job."""
    built = {_number(i): _facts(i) for i in range(ORDERS)}
    _publish(stack, client, [f.manufacturer()] + [
        placed(n, method="stripe_card" if x.payment_method == "stripe_card" else "on_account")
        for n, x in built.items()])  # fmt: skip
    _publish(stack, client, [e for i, x in enumerate(built.values()) for e in _updates(i, x)])
    one = [{"sku": LINES[0]["sku"], "quantity": 1}]
    _publish(stack, client, [f.envelope("delivery_note.requested", number=n, lines=one)
                             for n, x in built.items() if x.has_delivery_note])  # fmt: skip
    early = [n for i, n in enumerate(built) if i % 19 == 9]
    first = _job_done(stack, client, request(early))
    for number in early:
        if not unmet_conditions(built[number]):
            built[number] = replace(built[number], has_paid_backlog=True)
    return built, first


@pytest.mark.parametrize("stack", [SIGNED], indirect=True)
def test_a_mixed_request_reports_every_unmet_condition_and_creates_exactly_the_eligible_lines(
    stack: Stack,
) -> None:
    # Given 2,000 orders built by producers: some not by card, not paid, refunded, unconfirmed,
    # cancelled, archived, delivered, or given paid backlog by an earlier request
    _worker(stack)
    client = redis.Redis.from_url(stack.settings.redis_url)
    built, first = _build(stack, client)
    early = [n for i, n in enumerate(built) if i % 19 == 9]
    # When one request names all 2,000 orders
    job = _job_done(stack, client, request(list(built)))
    # Then each order's result names exactly the conditions it misses
    expected = {n: (outcome_for(unmet_conditions(x), dry_run=False).value,
                    reasons_text(unmet_conditions(x))) for n, x in built.items()}  # fmt: skip
    assert _results(stack, job.id) == expected
    eligible = [n for n, (outcome, _) in expected.items() if outcome == "created"]
    assert (len(eligible), sum(x.has_delivery_note for x in built.values())) == (687, 70)
    assert (job.created, job.skipped, job.already_created, first.created) == (687, 1278, 35, 35)
    assert (job.orders_done, job.skus_created) == (ORDERS, 687 * len(LINES))
    assert all(any(u in r for _, r in expected.values()) for u in
               ("not_card", "not_paid", "not_confirmed", "cancelled", "refunded", "archived",
                "paid_backlog_exists", "delivery_note_exists"))  # fmt: skip
    # And the paid backlog is exactly one row per line of each eligible order
    with_early = eligible + [n for n in early if built[n].has_paid_backlog]
    lines = {(n, str(x["sku"]), int(x["quantity"])) for n in with_early for x in LINES}
    assert _paid_rows(stack) == lines
    # And each of those orders was announced on the egress stream once
    assert wait_until(lambda: len(_announced(client)) == len(with_early), 60)
    assert sorted(_announced(client)) == sorted(with_early)
    # When the same request comes again, as a new envelope
    again = _job_done(stack, client, request(list(built)))
    # Then nothing is created: the orders that got paid backlog are already_created
    assert (again.created, again.skus_created, again.already_created) == (0, 0, len(with_early))
    assert _paid_rows(stack) == lines
    assert len(_announced(client)) == len(with_early)
    client.close()
