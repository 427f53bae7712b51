"""The payment desk the capture tests share: a database, the Stripe fake over HTTP, and the
payment jobs run in process against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from models.db.commerce import Order
from models.db.engine import Database
from models.db.machinery import Notification, OutboxJob
from models.db.uow import UnitOfWork
from models.domain.desk import DeskSettings
from models.domain.errors import RetryableError
from tasks.intake.ingest import Outcome, ingest_batch
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import run_outbox_job
from tests import factories as f
from tests.fakes.stripe_server import StripeFake
from workers.runtime import payment_job_specs
from workers.settings import Settings

API_KEY = "sk_test_capture_secret_9"
TOTAL = 25_800  # the sample order: 2 x 12,900 and a free leaflet
DESK = "desk@example.com"
CAPTURE = ("POST", "/v1/payment_intents/{id}/capture")
# PAD is in stock and DRILL is not: a split keeps 10,000 and backorders 15,800.
SPLIT_LINES = [
    {"sku": "PAD", "quantity": 1, "unit_price": 10_000, "is_insert": False},
    {"sku": "DRILL", "quantity": 1, "unit_price": 15_800, "is_insert": False},
]


@dataclass
class Desk:
    """A database, the Stripe fake, and a way to run every due payment job."""

    db: Database
    fake: StripeFake
    now: datetime
    jobs: JobRegistry

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, lambda: self.now, options=DeskSettings(desk_email=DESK))

    def feed(self, *envelopes: dict[str, Any]) -> list[Outcome]:
        with self.uow() as uow:
            outcomes = ingest_batch(uow, [f.body(e) for e in envelopes], f.policy())
            uow.commit()
        return outcomes

    def run_payments(self, rounds: int = 5) -> list[str]:
        """Run pending payment jobs until none is left (bounded); the errors seen."""
        errors: list[str] = []
        for _ in range(rounds):
            with self.db.sessions() as session:
                pending = OutboxJob.status == "pending"
                query = select(OutboxJob.id).where(pending, OutboxJob.queue == "payments")
                due = session.scalars(query).all()
            if not due:
                break
            for job_id in due:
                try:
                    run_outbox_job(self.uow, job_id, 20, jobs=self.jobs)
                except RetryableError as error:
                    errors.append(error.reason)
        return errors

    def card_order(self, number: str, amount: int = TOTAL, **intent: Any) -> str:
        pi_id = self.fake.create_authorized_intent(amount, "eur", **intent)
        placed = f.order(number, stripe_payment_intent_id=pi_id, placed_at="2026-03-02T09:00:00Z")
        assert [o.result for o in self.feed(f.manufacturer(), placed)][-1] == "applied"
        return pi_id

    def order(self, number: str) -> Order:
        with self.db.sessions() as session:
            return session.scalars(select(Order).where(Order.number == number)).one()

    def count(self, model: type, *where: Any) -> int:
        with self.db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def templates(self) -> list[tuple[str, str]]:
        with self.db.sessions() as session:
            rows = session.execute(select(Notification.template, Notification.recipient)
                                   .order_by(Notification.id))  # fmt: skip
            return [(t, r) for t, r in rows]


def running_desk(db: Database) -> Iterator[Desk]:
    """The `desk` fixture: a Stripe fake of its own and the payment jobs registered for it."""
    fake = StripeFake.start(API_KEY, seed=3, timeout_delay=1.0, slow_delay=1.0)
    settings = Settings(stripe_api_key=API_KEY, stripe_api_base=fake.base_url,
                        stripe_timeout_s=0.5, _env_file=None)  # fmt: skip
    # The jobs read the desk's clock, set from the wall clock (as the fake's is), to tell
    # whether a hold has lapsed.
    yield Desk(db, fake, datetime.now(UTC), JobRegistry(payment_job_specs(settings)))
    fake.stop()


def shipped(number: str, **fields: Any) -> dict[str, Any]:
    return f.envelope("order.shipped", number=number, **fields)
