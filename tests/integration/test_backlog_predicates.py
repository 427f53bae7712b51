"""The SQL predicates of paid-backlog eligibility agree with the pure rule, on both databases, for
every combination of the facts the rule reads."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import insert, select

from models.db import paid_backlog
from models.db.commerce import BacklogSku, Customer, DeliveryNote, Manufacturer, Order
from models.db.engine import Database
from models.domain.backlog import EligibilityFacts, Unmet, unmet_conditions
from models.domain.statuses import PaymentStatus
from tests.backlog_support import T0

pytestmark = pytest.mark.integration
TOTAL = 1000
COMBINATIONS = list(
    itertools.product(
        ["stripe_card", "on_account"],
        [s.value for s in PaymentStatus],
        [TOTAL, TOTAL - 1],
        ["new", "accepted", "confirmed"],
        ["unfulfilled", "backordered", "shipped", "cancelled"],
        [False, True],  # archived
        [False, True],  # has paid backlog
        [False, True],  # has a delivery note
    )
)


def _seed(db: Database) -> dict[str, EligibilityFacts]:
    """One order per combination; its number -> the facts it was built with."""
    built = {
        f"P{n:05d}": EligibilityFacts(c[0], c[1], c[2], TOTAL, *c[3:])
        for n, c in enumerate(COMBINATIONS)
    }
    with db.sessions() as session, session.begin():
        session.add(Manufacturer(id="m", name="M", holiday_country="DE", updated_at=T0))
        session.add(Customer(id="c", email="c@example.com", name="C"))
        session.flush()
        rows = [{"number": n, "customer_id": "c", "manufacturer_id": "m", "currency": "EUR",
                 "payment_method": x.payment_method, "payment_status": x.payment_status,
                 "paid": x.paid, "total": TOTAL, "confirmation_status": x.confirmation_status,
                 "fulfillment_status": x.fulfillment_status, "archived": x.archived,
                 "placed_at": T0, "updated_at": T0} for n, x in built.items()]  # fmt: skip
        session.execute(insert(Order), rows)
        ids = {str(n): int(i) for n, i in session.execute(select(Order.number, Order.id))}
        session.execute(insert(BacklogSku), [
            {"order_id": ids[n], "sku": "S", "kind": "paid", "quantity": 1, "remaining": 1,
             "unit_price": 0, "created_at": T0} for n, x in built.items() if x.has_paid_backlog
        ])  # fmt: skip
        session.execute(insert(DeliveryNote), [
            {"order_id": ids[n], "created_at": T0} for n, x in built.items() if x.has_delivery_note
        ])  # fmt: skip
    return built


def test_every_sql_predicate_agrees_with_the_rule(db: Database) -> None:
    # Given one order for every combination of the facts the rule reads
    built = _seed(db)
    assert len(built) == 3072
    sql = paid_backlog.unmet_sql()
    # When each predicate is evaluated by the database
    with db.sessions() as session:
        query = select(Order.number, *sql.values())
        by_sql = {
            str(row[0]): tuple(u for u, flag in zip(sql, row[1:], strict=True) if flag)
            for row in session.execute(query)
        }
        ids = {int(i): str(n) for i, n in session.execute(select(Order.id, Order.number))}
        read = {n: facts for _, n, facts in paid_backlog.facts(session, list(ids))}
        eligible_ids = [i for part in paid_backlog.iter_eligible_ids(session, 2) for i in part]
    # Then it names exactly the conditions the rule names, for every order
    expected = {number: unmet_conditions(facts) for number, facts in built.items()}
    assert by_sql == expected
    # And the facts the chunks read back are the facts the orders were built with
    assert read == built
    # And the planner's eligible ids are exactly the orders missing nothing: card, paid in full,
    # confirmed, not archived, no backlog or note, unfulfilled or backordered (not `shipped`:
    # its goods are delivered; not `cancelled`)
    assert sorted(ids[i] for i in eligible_ids) == sorted(n for n, u in expected.items() if not u)
    assert len(eligible_ids) == 2
    assert {u for unmet in expected.values() for u in unmet} == set(Unmet)
