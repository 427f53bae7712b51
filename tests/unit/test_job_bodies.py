"""Each job body against fakes of its ports: an in-memory SQLite, no network, no Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.db.base import Base
from models.db.engine import Database, connect
from models.db.tables import Notification, Order, OutboxJob
from models.db.uow import UnitOfWork
from models.domain.desk import DeskSettings
from tasks import log_context
from tasks.deadlines.scan import mark_overdue
from tasks.deadlines.webhook import message_id as webhook_id
from tasks.deadlines.webhook import webhook_job
from tasks.intake.ingest import ingest_batch
from tasks.notifications.sending import email_job
from tasks.outbox.egress import egress_jobs
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import run_outbox_job
from tasks.payments.jobs import payment_jobs
from tasks.payments.running import in_turn
from tests import factories as f
from tests.fakes.ports import (
    FakeGateway,
    FakeMailer,
    FakeRenderer,
    FakeStreamAppender,
    FakeWebhookPoster,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TOTAL = 25_800  # the sample order
PI = "pi_J1"


@pytest.fixture
def db() -> Iterator[Database]:
    database = connect("sqlite://")
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


class Desk:
    """Messages in, the staged jobs run through a registry of fakes."""

    def __init__(self, db: Database) -> None:
        self.db, self.now = db, NOW
        self.gateway, self.mailer = FakeGateway(), FakeMailer()
        self.poster, self.stream = FakeWebhookPoster(), FakeStreamAppender()
        self.jobs = JobRegistry([
            *payment_jobs(lambda: self.gateway, timedelta(seconds=30), in_turn),
            email_job(self.mailer, FakeRenderer(), "orders@shop.example"),
            webhook_job(self.poster), *egress_jobs(self.stream),
        ])  # fmt: skip

    def uow(self) -> UnitOfWork:
        desk = DeskSettings(desk_email="desk@shop.example")
        return UnitOfWork(self.db, lambda: self.now, options=desk)

    def feed(self, *envelopes: dict[str, Any]) -> list[str]:
        with self.uow() as uow:
            outcomes = ingest_batch(uow, [f.body(e) for e in envelopes], f.policy())
            uow.commit()
        return [o.result for o in outcomes]

    def run(self, times: int = 1) -> list[str]:
        """Run every pending job `times` over (a re-delivery finds it done); the outcomes."""
        with self.db.sessions() as session:
            ids = list(session.scalars(select(OutboxJob.id).where(OutboxJob.status == "pending")))
        return [self._run_one(i) for i in ids for _ in range(times)]

    def _run_one(self, outbox_id: int) -> str:
        scope = log_context.enter({})  # a scope per job, as the workers' middleware opens
        try:
            return run_outbox_job(self.uow, outbox_id, 5, jobs=self.jobs).outcome
        finally:
            log_context.leave(scope)

    def order(self) -> Order:
        with self.db.sessions() as session:
            return session.scalars(select(Order)).one()


def _card_order(desk: Desk) -> None:
    desk.gateway.authorize(PI, TOTAL, NOW + timedelta(days=6))
    placed = f.order("J1", stripe_payment_intent_id=PI, placed_at="2026-03-02T09:00:00Z",
                     capture_before=(NOW + timedelta(days=6)).isoformat())  # fmt: skip
    assert desk.feed(f.manufacturer(), placed) == ["applied", "applied"]


def test_a_shipment_captures_once_through_the_gateway(db: Database) -> None:
    desk = Desk(db)
    _card_order(desk)
    desk.feed(f.envelope("order.shipped", number="J1"))
    desk.run(times=2)
    assert (desk.gateway.effects("capture"), desk.gateway.intents[PI].amount_received) == (1, TOTAL)
    order = desk.order()
    assert (order.payment_status, order.hold_state, order.paid) == ("paid", "captured", TOTAL)


def test_a_refund_after_capture_refunds_what_stripe_was_paid(db: Database) -> None:
    desk = Desk(db)
    _card_order(desk)
    desk.feed(f.envelope("order.shipped", number="J1"))
    desk.run()
    desk.feed(f.envelope("order.refund_requested", number="J1"))
    desk.run(times=2)
    assert (desk.gateway.effects("refund"), desk.gateway.intents[PI].amount_refunded) == (1, TOTAL)
    assert (desk.order().payment_status, desk.order().paid) == ("refunded", 0)


def test_a_cancel_before_shipment_releases_the_hold(db: Database) -> None:
    desk = Desk(db)
    _card_order(desk)
    desk.feed(f.envelope("order.cancelled", number="J1"))
    desk.run(times=2)
    assert [op for op, _ in desk.gateway.calls] == ["retrieve", "cancel"]
    order = desk.order()
    assert (order.fulfillment_status, order.payment_status, order.hold_state) == (
        "cancelled", "voided", "released",
    )  # fmt: skip


def test_an_email_is_sent_once_with_its_stable_message_id(db: Database) -> None:
    desk = Desk(db)
    desk.feed(f.manufacturer(), f.order("J1", payment_method="on_account",
                                        stripe_payment_intent_id=None),
              f.envelope("order.confirmed", number="J1"))  # fmt: skip
    assert desk.run(times=2).count("done") == 1
    [email] = desk.mailer.sent
    assert (email["To"], email["Subject"]) == ("ada@example.com", "order_confirmed J1")
    with db.sessions() as session:
        note = session.scalars(select(Notification)).one()
        assert (note.status, note.message_id) == ("sent", email["Message-ID"])


def test_a_missed_deadline_posts_the_manufacturer_once(db: Database) -> None:
    desk = Desk(db)
    url = "https://oem.example/hook"
    desk.feed(f.manufacturer(notify_email=None, notify_webhook_url=url),
              f.order("J1", placed_at="2026-03-02T09:00:00Z"))  # fmt: skip
    desk.now = NOW + timedelta(days=3)
    with desk.uow() as uow:
        assert mark_overdue(uow, desk.now, 10).staged == 1
        uow.commit()
    desk.run(times=2)
    [(posted_to, body, ident)] = desk.poster.posts
    document = json.loads(body)
    assert (posted_to, document["type"], document["data"]["number"]) == (
        url, "order.confirmation_failure", "J1",
    )  # fmt: skip
    with db.sessions() as session:
        assert ident == webhook_id(session.scalars(select(Notification.key)).one())
    assert [e["type"] for e in desk.stream.events] == ["order.confirmation_overdue"]
