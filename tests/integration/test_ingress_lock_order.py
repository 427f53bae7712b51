"""Two consumers applying overlapping batches in opposite orders, on PostgreSQL: the up-front
locks of the global order (tasks/intake_locks.py) make them queue, never deadlock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from models.db.commerce import Customer, Inventory, Order, Payment
from models.db.engine import Database
from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from models.db.uow import UnitOfWork
from tasks.intake.ingest import ingest_batch
from tests import factories as f
from tests.support import feed, migrated

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
ROUNDS, TIMEOUT_S = 12, 60
ORDERS, SKUS, CUSTOMERS = ["L1", "L2", "L3", "L4"], ["S1", "S2", "S3"], ["K1", "K2", "K3"]


@pytest.fixture
def pg(fresh_postgres_url: str) -> Iterator[Database]:
    database = migrated(fresh_postgres_url)
    yield database
    database.dispose()


def _placed(number: str, customer: str) -> bytes:
    return f.body(f.order(number, payment_method="offline", stripe_payment_intent_id=None,
                          customer={"id": customer, "email": f"{customer}@example.com",
                                    "name": customer}))  # fmt: skip


def _batch(side: str, round_: int) -> list[bytes]:
    """One consumer's batch: new orders of the shared customers, payments on the shared orders
    and restocks of the shared SKUs, interleaved so that each goes one by one."""
    bodies = []
    for i in range(3):
        bodies.append(_placed(f"R{round_}-{side}-{i}", CUSTOMERS[i]))
        bodies.append(f.body(f.envelope("inventory.received", sku=SKUS[i], quantity=1)))
        bodies.append(f.body(f.envelope("payment.recorded", number=ORDERS[i], amount=1)))
        bodies.append(f.body(f.envelope("order.accepted", number=ORDERS[3 - i])))
    bodies.append(f.body(f.envelope("payment.recorded", number=ORDERS[3], amount=1)))
    return bodies


def _seed(db: Database) -> None:
    feed(db, [f.body(f.manufacturer())], f.policy(), T0)
    feed(db, [_placed(n, CUSTOMERS[0]) for n in ORDERS], f.policy(), T0)
    feed(db, [f.body(f.envelope("inventory.set", sku=s, quantity=10)) for s in SKUS],
         f.policy(), T0)  # fmt: skip


def _consume(db: Database, batches: list[list[bytes]], start: threading.Barrier,
             errors: list[BaseException]) -> None:  # fmt: skip
    for bodies in batches:
        start.wait(TIMEOUT_S)  # both consumers begin each round together
        try:
            with UnitOfWork(db, lambda: T0) as uow:
                outcomes = ingest_batch(uow, bodies, f.policy())
                uow.commit()
            assert [o.result for o in outcomes] == ["applied"] * len(bodies)
        except (OperationalError, AssertionError) as error:
            errors.append(error)


def _count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_overlapping_batches_in_opposite_orders_never_deadlock(pg: Database) -> None:
    # Given four orders, three customers and three SKUs that every batch shares
    _seed(pg)
    forward = [_batch("A", r) for r in range(ROUNDS)]
    backward = [list(reversed(_batch("B", r))) for r in range(ROUNDS)]
    start, errors = threading.Barrier(2), []  # type: ignore[var-annotated]
    # When two consumers apply them at the same moment, round after round
    threads = [threading.Thread(target=_consume, args=(pg, batches, start, errors))
               for batches in (forward, backward)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    # Then nothing failed: no deadlock (40P01) or any other error, and every envelope applied
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with pg.sessions() as session:
        stock = dict(session.execute(select(Inventory.sku, Inventory.on_hand)).all())
        paid = session.execute(
            select(Order.number, func.count(Payment.id))
            .join(Payment, Payment.order_id == Order.id).group_by(Order.number)
        ).all()  # fmt: skip
    assert stock == dict.fromkeys(SKUS, 10 + 2 * ROUNDS)
    assert dict(paid) == dict.fromkeys(ORDERS, 2 * ROUNDS)
    assert _count(pg, Order) == len(ORDERS) + 2 * 3 * ROUNDS
    assert _count(pg, Customer) == len(CUSTOMERS)
    assert _count(pg, InboxEntry) == 1 + len(ORDERS) + len(SKUS) + 2 * 13 * ROUNDS
    assert (_count(pg, QuarantinedMessage), _count(pg, ParkedMessage)) == (0, 0)
