"""The three status axes are independent: every combination is stored and read back as is."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.db.commerce import Customer, Manufacturer, Order
from models.db.engine import Database
from models.db.uow import UnitOfWork
from models.domain.statuses import ConfirmationStatus, FulfillmentStatus, PaymentStatus
from tasks.intake import ingest
from tests import factories as f
from workers.cli.orders import iter_orders

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
COMBINATIONS = list(itertools.product(ConfirmationStatus, FulfillmentStatus, PaymentStatus))


def test_every_combination_of_the_three_axes_is_representable(db: Database) -> None:
    # Given one order per combination (3 x 7 x 8 = 168)
    with db.sessions() as session, session.begin():
        session.add(Manufacturer(id="m", name="M", holiday_country="DE", updated_at=T0))
        session.add(Customer(id="c", email="c@example.com", name="C"))
        session.flush()
        for index, (confirmation, fulfillment, payment) in enumerate(COMBINATIONS):
            session.add(Order(
                number=f"X{index}", customer_id="c", manufacturer_id="m", currency="EUR",
                payment_method="offline", placed_at=T0, updated_at=T0,
                confirmation_status=confirmation.value, fulfillment_status=fulfillment.value,
                payment_status=payment.value,
            ))  # fmt: skip
    # When exported
    with db.sessions() as session:
        rows = list(iter_orders(session))
    # Then each comes back exactly as stored
    seen = [(r["confirmation_status"], r["fulfillment_status"], r["payment_status"]) for r in rows]
    assert seen == [(c.value, fl.value, p.value) for c, fl, p in COMBINATIONS]


def test_an_order_can_be_paid_before_it_is_confirmed_invoiced_or_shipped(db: Database) -> None:
    # Given a new on-account order, paid in full straight away
    with UnitOfWork(db, lambda: T0) as uow:
        order = f.order("AX-1", payment_method="offline", stripe_payment_intent_id=None)
        pay = f.envelope("payment.recorded", number="AX-1", amount=25_800)
        hold = f.envelope("order.fulfillment_changed", number="AX-1", status="on_hold")
        bodies = [f.body(m) for m in (f.manufacturer(), order, pay, hold)]
        assert {o.result for o in ingest.ingest_batch(uow, bodies, f.policy())} == {"applied"}
        uow.commit()
    # Then each axis moved on its own
    with db.sessions() as session:
        stored = session.scalars(select(Order)).one()
        assert (stored.confirmation_status, stored.fulfillment_status, stored.payment_status) == (
            "new", "on_hold", "paid",
        )  # fmt: skip
        assert (stored.invoiced, stored.outstanding_balance, stored.download_allowed) == (
            0, -25_800, True,
        )  # fmt: skip
