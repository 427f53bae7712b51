"""Helpers of the paid-backlog and delivery-note tests: apply envelopes in process, run the bulk
chunks the way a worker would, and read back results and backlog rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from models.db.bulk_jobs import BulkJob, BulkJobResult
from models.db.commerce import BacklogSku, DeliveryNoteLine, Order
from models.db.engine import Database
from models.db.machinery import OutboxJob
from models.db.uow import UnitOfWork
from tasks.backlog.paid import CHUNK, CHUNK_JOB
from tasks.intake.ingest import Outcome, ingest_batch
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import run_outbox_job
from tests import factories as f

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
DRILL, BITS, LEAFLET = "DRILL-18V", "BITS-10", "LEAFLET-DE"
LINES: list[dict[str, Any]] = [
    {"sku": DRILL, "quantity": 2, "unit_price": 12_900, "is_insert": False},
    {"sku": BITS, "quantity": 3, "unit_price": 500, "is_insert": False},
    {"sku": LEAFLET, "quantity": 1, "unit_price": 0, "is_insert": True},
]
TOTAL = 2 * 12_900 + 3 * 500


def apply(db: Database, *envelopes: dict[str, Any]) -> list[Outcome]:
    """Apply envelopes as one ingress batch, and commit."""
    with UnitOfWork(db, lambda: T0) as uow:
        outcomes = ingest_batch(uow, [f.body(e) for e in envelopes], f.policy())
        uow.commit()
    return outcomes


def placed(number: str, *, method: str = "stripe_card", lines: Any = None) -> dict[str, Any]:
    """An order.placed envelope (card by default, with its own PaymentIntent; the sample
    manufacturer)."""
    intent = f"pi_{number.replace('-', '_')}" if method == "stripe_card" else None
    extra = {"stripe_payment_intent_id": intent}
    return f.order(number, lines=lines or LINES, payment_method=method, **extra)


def confirmed(number: str) -> dict[str, Any]:
    """order.confirmed for `number`."""
    return f.envelope("order.confirmed", number=number)


def payment(number: str, amount: int) -> dict[str, Any]:
    """A manual payment of `amount` (negative: a refund)."""
    return f.envelope("payment.recorded", number=number, amount=amount, notify_customer=False)


def eligible(number: str, total: int = TOTAL) -> list[dict[str, Any]]:
    """Placed by card, confirmed and paid in full: every condition met."""
    return [placed(number), confirmed(number), payment(number, total)]


def request(numbers: list[str] | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """A paid_backlog.requested envelope for `numbers`, or for every eligible order."""
    if numbers is None:
        return f.envelope("paid_backlog.requested", order_numbers=None, all_eligible=True,
                          dry_run=dry_run)  # fmt: skip
    return f.envelope("paid_backlog.requested", order_numbers=numbers, dry_run=dry_run)


CHUNKS = JobRegistry([CHUNK])


def run_chunks(db: Database) -> int:
    """Run every pending chunk job as a worker would (lock, run, mark done); how many ran."""
    with db.sessions() as session:
        query = select(OutboxJob.id).where(OutboxJob.job == CHUNK_JOB.name,
                                           OutboxJob.status == "pending")  # fmt: skip
        ids = list(session.scalars(query.order_by(OutboxJob.id)))
    for outbox_id in ids:
        result = run_outbox_job(lambda: UnitOfWork(db, lambda: T0), outbox_id, 20, jobs=CHUNKS)
        assert result.outcome == "done", result
    return len(ids)


def last_job(db: Database) -> BulkJob:
    """The newest bulk job, detached."""
    with db.sessions() as session:
        job = session.scalars(select(BulkJob).order_by(BulkJob.id.desc()).limit(1)).one()
        session.expunge(job)
        return job


def results(db: Database, job_id: int) -> dict[str, tuple[str, str, int]]:
    """number -> (outcome, reasons, skus) of a job."""
    with db.sessions() as session:
        rows = session.scalars(select(BulkJobResult).where(BulkJobResult.job_id == job_id))
        return {r.number: (r.outcome, r.reasons, r.skus) for r in rows}


def backlog_of(db: Database, number: str) -> list[tuple[str, str, int, int]]:
    """(kind, sku, quantity, remaining) of an order's backlog, by kind then SKU."""
    with db.sessions() as session:
        query = (
            select(BacklogSku.kind, BacklogSku.sku, BacklogSku.quantity, BacklogSku.remaining)
            .join(Order, Order.id == BacklogSku.order_id)
            .where(Order.number == number)
            .order_by(BacklogSku.kind, BacklogSku.sku)
        )
        return [(str(k), str(s), int(q), int(r)) for k, s, q, r in session.execute(query)]


def count(db: Database, model: type, *where: Any) -> int:
    """Rows of `model` matching `where`."""
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def delivered(db: Database, number: str) -> list[tuple[str, int, bool, int]]:
    """(sku, quantity, billable, amount) of every note line of an order, in order."""
    with db.sessions() as session:
        query = (
            select(DeliveryNoteLine.sku, DeliveryNoteLine.quantity, DeliveryNoteLine.billable,
                   DeliveryNoteLine.amount)
            .join(BacklogSku, BacklogSku.id == DeliveryNoteLine.backlog_sku_id)
            .join(Order, Order.id == BacklogSku.order_id)
            .where(Order.number == number)
            .order_by(DeliveryNoteLine.id)
        )  # fmt: skip
        return [(str(s), int(q), bool(b), int(a)) for s, q, b, a in session.execute(query)]
