"""50 restocks of one SKU at once, from 2 processes x 4 threads, on PostgreSQL.

Restocks serialize on the allocation lock, so their ids follow the order in which they took
it; replaying them in that order through the pure allocation rule must give exactly the
releases the database recorded, with nothing over-released and nobody released twice.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from models.db.commerce import (
    Customer,
    Inventory,
    Manufacturer,
    Order,
    OrderLine,
    Restock,
    RestockDecision,
    StockReservation,
)
from models.db.engine import Database, connect
from models.db.machinery import OutboxJob
from models.db.uow import UnitOfWork
from models.domain.backorders import ReleasePolicy, Waiting, plan_release
from tasks.intake.ingest import ingest_batch
from tasks.outbox.egress import PUBLISH_JOB
from tests import factories as f
from tests.support import migrated

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SKU, OTHER = "HOT-1", "RARE-1"
BACKORDERS, RESTOCKS, PROCESSES, THREADS = 1000, 50, 2, 4
REFUSED = ("nothing_in_stock",)  # a split that finds no free stock left by the restocks


def _seed(db: Database, rng: random.Random, count: int = BACKORDERS) -> list[Waiting]:
    """`count` backorders of 1-3 HOT-1; every tenth also needs 1 RARE-1 (only 20 in stock)."""
    waiting = []
    with db.sessions() as session, session.begin():
        session.add(Manufacturer(id="m", name="M", holiday_country="DE", updated_at=T0))
        session.add(Customer(id="c", email="c@example.com", name="C"))
        session.add_all([Inventory(sku=SKU, on_hand=0, reserved=0),
                         Inventory(sku=OTHER, on_hand=20, reserved=0)])  # fmt: skip
        orders = [{"number": f"W{i}-backorder", "customer_id": "c", "manufacturer_id": "m",
                   "currency": "EUR", "payment_method": "offline", "fulfillment_status":
                   "backordered", "placed_at": T0 + timedelta(seconds=i), "updated_at": T0}
                  for i in range(count)]  # fmt: skip
        ids = session.scalars(insert(Order).returning(Order.id), orders).all()
        lines = []
        for i, order_id in enumerate(ids):
            needs = {SKU: rng.randint(1, 3)} | ({OTHER: 1} if i % 10 == 0 else {})
            waiting.append(Waiting(order_id, f"W{i}-backorder", needs))
            lines += [{"order_id": order_id, "position": p, "sku": sku, "quantity": q,
                       "unit_price": 100, "is_insert": False}
                      for p, (sku, q) in enumerate(needs.items(), start=1)]  # fmt: skip
        session.execute(insert(OrderLine), lines)
    return waiting


def _consume(url: str, bodies: list[bytes], allowed: tuple[str, ...]) -> None:
    """One worker thread: one message per transaction, as the ingress applies them."""
    db = connect(url, pool_size=1)
    try:
        for body in bodies:
            with UnitOfWork(db, lambda: T0) as uow:
                outcome = ingest_batch(uow, [body], f.policy())[0]
                assert outcome.result == "applied" or outcome.reason in allowed
                uow.commit()
    finally:
        db.dispose()


def _process(url: str, groups: list[list[bytes]], allowed: tuple[str, ...] = ()) -> None:
    """One worker process: a thread per group; `allowed` names refusals that are expected."""
    args = [(url, group, allowed) for group in groups]
    threads = [threading.Thread(target=_consume, args=a) for a in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def _replay(waiting: list[Waiting], received: list[int]) -> list[set[int]]:
    """Each restock's releases, applied one after another through the pure rule."""
    free, left, released = {SKU: 0, OTHER: 20}, list(waiting), []
    for quantity in received:
        free[SKU] += quantity
        plan = plan_release(left, free, ReleasePolicy.SKIP_BLOCKED)
        free = plan.available_after
        done = {w.order_id for w in plan.released}
        left = [w for w in left if w.order_id not in done]
        released.append(done)
    return released


def test_parallel_restocks_never_over_release_or_release_twice(fresh_postgres_url: str) -> None:
    # Given 1,000 backorders and 50 restocks of 1-40 units
    db = migrated(fresh_postgres_url)
    rng = random.Random(7)
    waiting = _seed(db, rng)
    quantities = [rng.randint(1, 40) for _ in range(RESTOCKS)]
    bodies = [f.body(f.envelope("inventory.received", sku=SKU, quantity=q)) for q in quantities]
    groups = [bodies[i :: PROCESSES * THREADS] for i in range(PROCESSES * THREADS)]
    # When 2 processes of 4 threads apply them at the same time
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_process, args=(fresh_postgres_url, groups[p::PROCESSES]))
               for p in range(PROCESSES)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]
    # Then replaying them in lock order gives exactly the recorded releases
    with db.sessions() as session:
        restocks = session.execute(select(Restock.id, Restock.quantity).order_by(Restock.id)).all()
        recorded = _released_per_restock(session, [r.id for r in restocks])
        inventory = {i.sku: (i.on_hand, i.reserved) for i in session.scalars(select(Inventory))}
        processing = session.scalar(select(func.count()).select_from(Order).where(
            Order.fulfillment_status == "processing"))  # fmt: skip
        events = session.scalars(
            select(OutboxJob.payload).where(OutboxJob.job == PUBLISH_JOB.name)
        ).all()
    assert len(restocks) == RESTOCKS
    assert recorded == _replay(waiting, [r.quantity for r in restocks])
    released = [order_id for batch in recorded for order_id in batch]
    needs = {w.order_id: w.needs for w in waiting}
    reserved = {sku: sum(needs[o].get(sku, 0) for o in released) for sku in (SKU, OTHER)}
    # Nobody twice; exactly the received quantity on hand; never more reserved than that
    assert len(released) == len(set(released)) == processing
    assert inventory == {SKU: (sum(quantities), reserved[SKU]), OTHER: (20, reserved[OTHER])}
    assert reserved[SKU] <= sum(quantities)
    # One fulfillment.submitted per released backorder
    submitted = sorted(e["event"]["data"]["number"] for e in events)
    assert submitted == sorted(needs_number(waiting, released))
    assert len(released) > 100  # the run exercised real releases, not an empty race


def needs_number(waiting: list[Waiting], released: list[int]) -> list[str]:
    numbers = {w.order_id: w.number for w in waiting}
    return [numbers[order_id] for order_id in released]


def _released_per_restock(session: Any, restock_ids: list[int]) -> list[set[int]]:
    rows = session.execute(
        select(RestockDecision.restock_id, RestockDecision.order_id).where(
            RestockDecision.outcome == "released"
        )
    ).all()
    per: dict[int, set[int]] = {restock_id: set() for restock_id in restock_ids}
    for restock_id, order_id in rows:
        per[restock_id].add(order_id)
    return [per[restock_id] for restock_id in restock_ids]


def test_restocks_racing_splits_never_reserve_more_than_is_on_hand(
    fresh_postgres_url: str,
) -> None:
    # Given 200 backorders waiting on HOT-1, and 40 new orders that each want 2 HOT-1 and one
    # SKU never stocked, so that a split keeps HOT-1 (stock a restock would release) if free
    db = migrated(fresh_postgres_url)
    rng = random.Random(11)
    _seed(db, rng, count=200)
    lines = [{"sku": SKU, "quantity": 2, "unit_price": 100, "is_insert": False},
             {"sku": "NONE-1", "quantity": 1, "unit_price": 100, "is_insert": False}]  # fmt: skip
    with UnitOfWork(db, lambda: T0) as uow:
        placed = [f.body(f.manufacturer())]
        placed += [f.body(f.order(f"N{i}", lines=lines)) for i in range(40)]
        ingest_batch(uow, placed, f.policy())
        uow.commit()
    quantities = [rng.randint(1, 40) for _ in range(RESTOCKS)]
    restocks = [f.body(f.envelope("inventory.received", sku=SKU, quantity=q)) for q in quantities]
    splits = [f.body(f.envelope("order.split_requested", number=f"N{i}")) for i in range(40)]
    mixed = restocks + splits
    rng.shuffle(mixed)
    groups = [mixed[i :: PROCESSES * THREADS] for i in range(PROCESSES * THREADS)]
    # When 2 processes of 4 threads apply restocks and splits at once
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_process, args=(fresh_postgres_url, groups[p::PROCESSES], REFUSED))
        for p in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]
    # Then what is reserved is exactly the sum of the reservations, and never more than on hand
    with db.sessions() as session:
        on_hand, reserved = session.execute(
            select(Inventory.on_hand, Inventory.reserved).where(Inventory.sku == SKU)
        ).one()
        held = session.scalar(
            select(func.sum(StockReservation.quantity)).where(StockReservation.sku == SKU)
        )
        released = session.scalars(
            select(RestockDecision.order_id).where(RestockDecision.outcome == "released")
        ).all()
        split = session.scalar(select(func.count()).select_from(Order).where(
            Order.number.like("N%-backorder")))  # fmt: skip
    assert on_hand == sum(quantities)
    assert reserved == held
    assert reserved <= on_hand
    assert len(released) == len(set(released))
    # Both kinds really took stock
    assert (split or 0) >= 1
    assert len(released) >= 1
