"""Customer emails through real workers and a real SMTP server: one per change, never lost."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select

from models.db.machinery import Notification
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.support import wait_until
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.e2e


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as server:
        yield server


def _customer(i: int) -> dict[str, str]:
    return {"id": f"C{i}", "email": f"customer{i}@example.com", "name": f"Customer {i}"}


def _changes(i: int) -> list[dict[str, Any]]:
    """Four changes for order N{i}: processing, paid, shipped, fulfilled, one second apart."""
    number = f"N{i}"
    changes = [
        f.envelope("order.fulfillment_changed", number=number, status="processing",
                   note=f"packing note {i}"),
        f.envelope("payment.recorded", number=number, amount=25_800, method="offline"),
        f.envelope("order.shipped", number=number, tracking_numbers=[f"TRK{i}A", f"TRK{i}B"],
                   carrier="DHL", note=f"ship note {i}"),
        f.envelope("order.fulfillment_changed", number=number, status="fulfilled", note=None),
    ]  # fmt: skip
    start = datetime(2026, 3, 4, 12, 0, tzinfo=UTC) + timedelta(seconds=10 * i)
    for step, change in enumerate(changes):
        # Re-signed: occurred_at is part of what the signature covers.
        change["occurred_at"] = (start + timedelta(seconds=step)).isoformat()
        changes[step] = f.resign(change)
    return changes


def _publish_twice(stack: Stack, envelopes: list[dict[str, Any]]) -> None:
    client = redis.Redis.from_url(stack.settings.redis_url)
    pipe = client.pipeline(transaction=False)
    for item in envelopes:
        for _ in range(2):  # every change delivered twice
            pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: f.body(item)})
    pipe.execute()


def _place(stack: Stack, count: int) -> None:
    orders = [
        f.order(f"N{i}", customer=_customer(i), payment_method="on_account",
                stripe_payment_intent_id=None)
        for i in range(count)
    ]  # fmt: skip
    _publish_twice(stack, [f.manufacturer(), *orders])


def _statuses(stack: Stack) -> Counter[str]:
    with stack.rt.db.sessions() as session:
        return Counter(session.scalars(select(Notification.status)))


SINK_SETTINGS = {"signing_keys": f.SIGNING_KEYS_SETTING, "outbox_redeliver_after_s": 10}


@pytest.mark.parametrize("stack", [SINK_SETTINGS], indirect=True)
def test_a_thousand_changes_delivered_twice_make_a_thousand_emails_despite_an_outage(
    stack: Stack, sink: SmtpSink
) -> None:
    # Given 250 orders and 1,000 status changes, every message delivered twice
    stack.env["ORDERFLOW_SMTP_URL"] = sink.url
    stack.worker()
    _place(stack, 250)
    _publish_twice(stack, [change for i in range(250) for change in _changes(i)])
    # When the mail server goes down for 60 s in the middle
    assert sink.wait_for_count(200, 60)
    sink.go_down()
    sent_before_outage = sink.count()
    assert wait_until(lambda: False, 60, 1.0) is False  # the outage: 60 s, bounded
    sink.come_up()
    # Then exactly 1,000 emails arrive, none lost, none twice
    assert sink.wait_for_count(1000, 180), f"{sink.count()} emails, statuses {_statuses(stack)}"
    assert wait_until(lambda: _statuses(stack) == Counter({"sent": 1000}), 30)
    print(f"emails={sink.count()} before_outage={sent_before_outage} statuses={_statuses(stack)}")
    mails = sink.messages
    assert len(mails) == 1000
    assert len({m.message_id for m in mails}) == 1000
    subjects = Counter(re.sub(r"N\d+", "N#", m.subject or "") for m in mails)
    assert subjects == Counter({
        "Order N# is being prepared": 250, "Payment received for order N#": 250,
        "Order N# has shipped": 250, "Order N# is complete": 250,
    })  # fmt: skip
    shipped = {m.rcpt_tos[0]: m.text for m in mails if "has shipped" in (m.subject or "")}
    assert "Tracking: TRK7A, TRK7B." in shipped["customer7@example.com"]
    assert "with DHL" in shipped["customer7@example.com"]
    assert "Note: ship note 7" in shipped["customer7@example.com"]
    prepared = [m.text for m in mails if m.rcpt_tos == ["customer9@example.com"]
                and "being prepared" in (m.subject or "")]  # fmt: skip
    assert len(prepared) == 1
    assert "Note: packing note 9" in prepared[0]


@pytest.mark.parametrize("stack", [SINK_SETTINGS], indirect=True)
def test_a_refused_recipient_fails_once_with_the_reason_and_others_are_delivered(
    stack: Stack, sink: SmtpSink
) -> None:
    # Given ten orders, one of whose customers the mail server refuses for good
    sink.reject_recipient("customer3@example.com", 550, "5.1.1 mailbox unavailable")
    stack.env["ORDERFLOW_SMTP_URL"] = sink.url
    stack.worker()
    _place(stack, 10)
    _publish_twice(stack, [change for i in range(10) for change in _changes(i)])
    # When everything has been tried
    settled = wait_until(lambda: _statuses(stack) == Counter({"sent": 36, "failed": 4}), 60)
    assert settled, f"{_statuses(stack)}, sink {sink.count()}, rejected {sink.rcpt_rejections}"
    # Then the refused customer's four emails failed with the reason, tried once each
    with stack.rt.db.sessions() as session:
        failed = session.scalars(select(Notification).where(Notification.status == "failed")).all()
    assert {n.recipient for n in failed} == {"customer3@example.com"}
    assert {n.attempts for n in failed} == {1}
    assert {n.last_error for n in failed} == {"recipient_refused: 550 5.1.1 mailbox unavailable"}
    assert sink.rcpt_rejections == 4
    assert sink.count() == 36
