"""Confirmation deadlines through real worker and scheduler processes: 500 orders, 120 left
unconfirmed past their deadline, a manufacturer's webhook receiver that is down at first."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.db.tables import Notification, Order, OutboxJob
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import wait_until
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import EGRESS_STREAM, ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.e2e
SECRET = "whsec_e2e_deadlines"
OEM_EMAIL, DESK = "oc@oem.example", "desk@shop.example"
SETTINGS = {
    "signing_keys": f.SIGNING_KEYS_SETTING, "oem_webhook_secret": SECRET,
    "outbox_redeliver_after_s": 10, "scheduler_tick_s": 0.2, "deadline_scan_s": 1,
    # 1 % of a five-business-day window is an hour or two: orders placed yesterday are due a
    # reminder now, while their deadline is still days ahead.
    "reminder_share": 0.01, "desk_email": DESK,
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver.start(SECRET.encode()) as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as server:
        yield server


def _envelopes(url: str) -> list[dict[str, Any]]:
    """A five-day-SLA manufacturer; 120 late orders, 300 late but confirmed, 80 placed
    yesterday (their deadline ahead)."""
    now = datetime.now(UTC)
    maker = f.manufacturer(id="oem-e2e", name="E2E Parts", sla_business_days=5, timezone="UTC",
                           holiday_country="DE", holiday_subdivision=None, cutoff_hour=17,
                           notify_email=OEM_EMAIL, notify_webhook_url=url)  # fmt: skip

    def order(number: str, placed_at: datetime) -> dict[str, Any]:
        return f.order(number, manufacturer_id="oem-e2e", placed_at=placed_at.isoformat(),
                       payment_method="on_account", stripe_payment_intent_id=None)  # fmt: skip

    old, yesterday = now - timedelta(days=40), now - timedelta(days=1)
    late = [order(f"L{i:03d}", old) for i in range(120)]
    confirmed = [order(f"C{i:03d}", old) for i in range(300)]
    fresh = [order(f"F{i:03d}", yesterday) for i in range(80)]
    confirmations = [
        f.envelope("order.confirmed", number=f"C{i:03d}", at=now.isoformat()) for i in range(300)
    ]
    return [maker, *late, *confirmed, *fresh, *confirmations]


def _publish(stack: Stack, envelopes: list[dict[str, Any]]) -> None:
    client = redis.Redis.from_url(stack.settings.redis_url)
    pipe = client.pipeline(transaction=False)
    for item in envelopes:
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: f.body(item)})
    pipe.execute()
    client.close()


def _count(stack: Stack, *where: Any) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Order).where(*where)) or 0)


def _webhook_attempts(stack: Stack) -> list[int]:
    with stack.rt.db.sessions() as session:
        query = select(Notification.attempts).where(Notification.channel == "webhook")
        return list(session.scalars(query))


def _unsent(stack: Stack) -> list[tuple[Any, ...]]:
    """Each webhook not sent, with its outbox job: what a failure report needs to say."""
    query = (
        select(Notification.id, Notification.status, Notification.attempts,
               Notification.claimed_at, Notification.last_error, OutboxJob.status,
               OutboxJob.sends, OutboxJob.attempts, OutboxJob.next_send_at, OutboxJob.last_error)
        .join(OutboxJob, OutboxJob.key == func.concat("notify:", Notification.id), isouter=True)
        .where(Notification.channel == "webhook", Notification.status != "sent")
    )  # fmt: skip
    with stack.rt.db.sessions() as session:
        return [tuple(row) for row in session.execute(query)]


def _egress_types(stack: Stack) -> Counter[str]:
    client = redis.Redis.from_url(stack.settings.redis_url)
    entries: Any = client.xrange(EGRESS_STREAM)  # redis-py types RESP2 and RESP3 at once
    client.close()
    return Counter(json.loads(fields[b"event"])["type"] for _, fields in entries)


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_120_late_orders_of_500_make_120_signed_webhooks_despite_a_receiver_outage(
    stack: Stack, receiver: WebhookReceiver, sink: SmtpSink
) -> None:
    # Given a worker that has stored 500 orders (300 confirmed), and a receiver that is down
    receiver.go_down()
    stack.env["ORDERFLOW_SMTP_URL"] = sink.url
    stack.worker(threads=8)  # mostly waiting on SMTP and HTTP: more threads, not processes
    _publish(stack, _envelopes(receiver.url))
    # Two consumers apply the stream in parallel: the confirmations can be done before the last
    # placements are, so wait for both.
    assert wait_until(
        lambda: (
            _count(stack, Order.confirmation_status == "confirmed") == 300 and _count(stack) == 500
        ),
        60,
    )
    # When the scheduler starts and every webhook has failed twice against the dead receiver
    stack.start("scheduler", "scheduler")
    down = wait_until(lambda: sorted(_webhook_attempts(stack))[:1] == [2], 60, 0.2)
    assert down, f"attempts {Counter(_webhook_attempts(stack))}"
    assert receiver.requests == []
    receiver.come_up()
    # Then exactly 120 webhooks arrive, each signed, one per late order, none for the others
    assert receiver.wait_for_count(120, 60), f"{receiver.count()} webhooks; {_unsent(stack)}"
    assert sink.wait_for_count(500, 60), f"{sink.count()} emails"
    assert wait_until(lambda: False, 3, 0.5) is False  # a grace period for any duplicate
    posts = receiver.requests
    numbers = Counter(p.document["data"]["number"] for p in posts)
    assert len(posts) == 120
    assert numbers == Counter({f"L{i:03d}": 1 for i in range(120)})
    assert all(p.signature_ok for p in posts)
    assert len({p.document["id"] for p in posts}) == 120
    # And each late order is marked once, with one email to the manufacturer and one event
    assert _count(stack, Order.confirmation_overdue) == 120
    assert Counter(m.rcpt_tos[0] for m in sink.messages) == Counter(
        {OEM_EMAIL: 120, DESK: 80, "ada@example.com": 300}
    )
    assert _egress_types(stack)["order.confirmation_overdue"] == 120
    assert _unsent(stack) == []
    desk = {m.subject.split()[2] for m in sink.messages if m.rcpt_tos == [DESK] and m.subject}
    assert desk == {f"F{i:03d}" for i in range(80)}
    print(f"webhooks={len(posts)} attempts={Counter(_webhook_attempts(stack))} "
          f"emails={sink.count()}")  # fmt: skip
