"""Ledger rate: signed `payment.recorded` envelopes (manual payments) applied by real `orderflow
worker` processes to on-account orders placed beforehand, against bare dramatiq's INSERT rate.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.baseline import DEFAULT_PROCESSES, DEFAULT_THREADS, BenchContext, ResultRow
from bench.ingress import KEY_ID, _timed_drain, load_stream, upsert_manufacturer
from models.db import migrate
from models.db.base import Base
from models.db.commerce import Order, Payment
from models.db.engine import connect
from models.db.machinery import Notification, ParkedMessage, QuarantinedMessage
from models.db.uow import UnitOfWork
from models.domain.ledger import HoldState, payment_status, totals
from tasks.intake.ingest import ingest_batch
from tasks.messages.signing import sign
from tests import factories
from workers import processes

ORDERS = 10_000
PAYMENTS = 100_000
#: Orders placed per in-process `ingest_batch` call during the (untimed) setup.
PLACE_BATCH = 500
#: Overpaid orders get this much more per payment than an exact share.
_OVER = 100


@dataclass(frozen=True)
class Plan:
    """What the stream will hold: payment i goes to order `orders[i]` with `amounts[i]`."""

    order_count: int
    orders: list[int]
    amounts: list[int]
    total: int  # every order's total (the sample's lines)

    def expected(self) -> dict[str, tuple[int, int, str]]:
        """Per order number: paid, payment count, final payment status."""
        paid: dict[int, list[int]] = {seq: [] for seq in range(self.order_count)}
        for seq, amount in zip(self.orders, self.amounts, strict=True):
            paid[seq].append(amount)
        none = HoldState.NONE  # on account: no card hold
        return {
            order_number(seq): (
                sum(got),
                len(got),
                payment_status(totals(self.total, [], got), none).value,
            )
            for seq, got in paid.items()
        }


def ledger_scenario(
    ctx: BenchContext, *, orders: int = ORDERS, payments: int = PAYMENTS
) -> list[ResultRow]:
    """One row: `payments` manual payments, round-robin over `orders` on-account orders."""
    if ctx.postgres_server is None or ctx.redis_server is None:
        raise RuntimeError("the ledger bench needs the runner's own servers")
    base = ctx.baseline()
    secret = secrets.token_hex(24).encode()  # this run's only; never printed
    plan = plan_payments(orders, payments)
    url = ctx.postgres_server.create_database(f"bench_ledger_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    upsert_manufacturer(url, secret)
    place_orders(url, orders, secret)
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        load_stream(client, payment_bodies(plan, secret))
        with tempfile.TemporaryDirectory(prefix="orderflow-bench-ledger-") as workdir:
            env = processes.child_env(
                {
                    "ORDERFLOW_DATABASE_URL": url,
                    "ORDERFLOW_DATA_DIR": workdir,
                    "ORDERFLOW_REDIS_URL": ctx.redis_url,
                    "ORDERFLOW_SIGNING_KEYS": f"{KEY_ID}:{secret.decode()}",
                }
            )
            seconds = _timed_drain(client, env, Path(workdir), payments)
    finally:
        client.close()
    emails = check_ledger(url, plan)
    note = (
        f"orderflow worker, {DEFAULT_PROCESSES} processes x {DEFAULT_THREADS} threads; "
        f"clock from release; {payments / orders:g} payments/order, interleaved; "
        f"{emails} 'paid' emails staged, left pending (no SMTP URL)"
    )
    return [
        ResultRow(
            "ledger",
            f"payment.recorded over {orders} orders",
            payments,
            seconds,
            payments / seconds / base.insert_per_s,
            note,
        )
    ]


def order_number(seq: int) -> str:
    return f"BENCH-L{seq:07d}"


def plan_payments(orders: int, payments: int) -> Plan:
    """Round-robin over the orders; a third end paid exactly, a third overpaid, a third part-paid.

    Interleaved as payments arrive in practice: a batch touches many orders, not one.
    """
    lines = factories.data("order.placed")["lines"]
    total = sum(int(line["quantity"]) * int(line["unit_price"]) for line in lines)
    seqs, amounts = [], []
    for index in range(payments):
        seq = index % orders
        count = payments // orders + (1 if seq < payments % orders else 0)
        share = max(1, total // count)
        first_rest = total - share * count if index < orders else 0  # exact orders sum to total
        amounts.append((max(1, share + first_rest), share + _OVER, max(1, share // 2))[seq % 3])
        seqs.append(seq)
    return Plan(orders, seqs, amounts, total)


def _signed(type_: str, secret: bytes, **fields: Any) -> bytes:
    return factories.body(sign(factories.envelope(type_, signed=False, **fields), KEY_ID, secret))


def payment_bodies(plan: Plan, secret: bytes) -> list[bytes]:
    """Signed manual payments ("offline"), each with its own reference; customers notified."""
    at = datetime(2026, 3, 5, 10, tzinfo=UTC).isoformat()
    return [
        _signed(
            "payment.recorded",
            secret,
            number=order_number(seq),
            amount=amount,
            method="offline",
            reference=f"BENCH-PAY-{index:08d}",
            at=at,
            notify_customer=True,
        )
        for index, (seq, amount) in enumerate(zip(plan.orders, plan.amounts, strict=True))
    ]


def place_orders(database_url: str, orders: int, secret: bytes) -> None:
    """`orders` on-account orders through the ingress code path, `PLACE_BATCH` per transaction."""
    policy = replace(factories.policy(), keys={KEY_ID: secret})
    db = connect(database_url)
    try:
        for start in range(0, orders, PLACE_BATCH):
            bodies = [
                _signed(
                    "order.placed",
                    secret,
                    number=order_number(seq),
                    payment_method="on_account",
                    stripe_payment_intent_id=None,
                    customer={
                        "id": f"BL-{seq:07d}",
                        "email": f"l{seq}@example.com",
                        "name": f"L {seq}",
                    },
                )
                for seq in range(start, min(start + PLACE_BATCH, orders))
            ]
            with UnitOfWork(db, lambda: datetime.now(UTC)) as uow:
                results = Counter(o.result for o in ingest_batch(uow, bodies, policy))
                uow.commit()
            if results != {"applied": len(bodies)}:
                raise RuntimeError(f"ledger bench orders not all placed: {dict(results)}")
    finally:
        db.dispose()


def check_ledger(database_url: str, plan: Plan) -> int:
    """Every payment stored, each order's `paid` its payments' sum, nothing held back; returns
    how many notifications were staged."""
    db = connect(database_url)
    try:
        with db.sessions() as session:
            found = _order_ledgers(session)
            held = {
                model.__name__: _count(session, model)
                for model in (QuarantinedMessage, ParkedMessage)
            }
            stored, emails = _count(session, Payment), _count(session, Notification)
    finally:
        db.dispose()
    expected = {
        n: (paid, paid, rows, status) for n, (paid, rows, status) in plan.expected().items()
    }
    wrong = sorted(n for n in expected.keys() | found.keys() if found.get(n) != expected.get(n))
    if wrong or stored != len(plan.amounts) or any(held.values()):
        sample = {n: (found.get(n), expected.get(n)) for n in wrong[:3]}
        raise RuntimeError(
            f"ledger bench effects: {stored} payments of {len(plan.amounts)}, {held}, "
            f"{len(wrong)} orders wrong (found, expected): {sample}"
        )
    return emails


def _order_ledgers(session: Session) -> dict[str, tuple[int, int, int, str]]:
    """Per order number: stored `paid`, its payments' sum and count, payment status."""
    sums = (
        select(Payment.order_id, func.sum(Payment.amount).label("amount"), func.count().label("n"))
        .group_by(Payment.order_id)
        .subquery()
    )
    query = select(Order.number, Order.paid, sums.c.amount, sums.c.n, Order.payment_status)
    rows = session.execute(query.outerjoin(sums, sums.c.order_id == Order.id))
    return {
        number: (paid, int(amount or 0), int(n or 0), status)
        for number, paid, amount, n, status in rows
    }


def _count(session: Session, model: type[Base]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)
