"""Three `orderflow scheduler` processes over 400 late orders; the one scanning is SIGKILLed
mid-scan. Counted at the manufacturer's receiver: one failure webhook per order, none twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import func, select

from models.db.tables import Order, SchedulerRun
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import wait_until
from workers.processes import OrderflowProcess
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.chaos
SECRET = "whsec_chaos_schedulers"
ORDERS = 400
SETTINGS = {
    "signing_keys": f.SIGNING_KEYS_SETTING, "oem_webhook_secret": SECRET,
    "outbox_redeliver_after_s": 5, "scheduler_tick_s": 0.1, "deadline_scan_s": 1,
    # One order per transaction and no rate limit: a scan takes seconds, so it can be cut.
    "deadline_scan_batch": 1, "deadline_scan_per_tick": 100_000,
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver.start(SECRET.encode()) as server:
        yield server


def _publish_late_orders(stack: Stack, url: str) -> None:
    placed = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    maker = f.manufacturer(notify_email=None, notify_webhook_url=url)
    orders = [f.order(f"K{i:04d}", placed_at=placed, payment_method="on_account",
                      stripe_payment_intent_id=None) for i in range(ORDERS)]  # fmt: skip
    client = redis.Redis.from_url(stack.settings.redis_url)
    pipe = client.pipeline(transaction=False)
    for item in [maker, *orders]:
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: f.body(item)})
    pipe.execute()
    client.close()


def _marked(stack: Stack) -> int:
    with stack.rt.db.sessions() as session:
        query = select(func.count()).select_from(Order).where(Order.confirmation_overdue)
        return int(session.scalar(query) or 0)


def _unfinished_scans(stack: Stack) -> list[str]:
    """Owners of scan ticks that have not ended, earliest first."""
    with stack.rt.db.sessions() as session:
        query = select(SchedulerRun.owner).where(
            SchedulerRun.job == "confirmation_scan", SchedulerRun.finished_at.is_(None)
        )
        return list(session.scalars(query.order_by(SchedulerRun.started_at)))


def _holder(stack: Stack, schedulers: list[OrderflowProcess]) -> OrderflowProcess | None:
    """The scheduler holding the current scan tick, once it has marked a few orders."""
    if _marked(stack) < 10:
        return None
    by_pid = {str(p.pid): p for p in schedulers}
    owners = [by_pid.get(owner.rpartition(":")[2]) for owner in _unfinished_scans(stack)]
    return next((p for p in owners if p is not None), None)


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_killing_the_scanning_scheduler_loses_and_duplicates_no_failure_message(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    # Given 400 stored orders past their deadline and three schedulers
    stack.worker()
    _publish_late_orders(stack, receiver.url)
    with stack.rt.db.sessions() as session:
        stored = lambda: session.scalar(select(func.count()).select_from(Order)) == ORDERS  # noqa: E731
        assert wait_until(stored, 60)
    schedulers = [stack.start(f"scheduler-{i}", "scheduler") for i in range(3)]
    # When the one holding the scan tick is SIGKILLed in the middle of its scan
    deadline, holder = time.monotonic() + 60, None
    while holder is None and time.monotonic() < deadline:
        holder = _holder(stack, schedulers)
        time.sleep(0.01)
    assert holder is not None, "no scan seen in progress"
    holder.kill()
    marked_at_kill = _marked(stack)
    # Then the others finish the scan, and every order gets exactly one webhook
    assert wait_until(lambda: _marked(stack) == ORDERS, 60), f"marked={_marked(stack)}"
    assert receiver.wait_for_count(ORDERS, 60), f"webhooks={receiver.count()}"
    assert wait_until(lambda: False, 3, 0.5) is False  # a grace period for any duplicate
    numbers = Counter(p.document["data"]["number"] for p in receiver.accepted)
    effects, distinct = sum(numbers.values()), len(numbers)
    lost, duplicated = ORDERS - distinct, effects - distinct
    print(f"attempted={ORDERS} effects={effects} lost={lost} duplicated={duplicated} "
          f"marked_at_kill={marked_at_kill}")  # fmt: skip
    assert 10 <= marked_at_kill < ORDERS
    assert (lost, duplicated) == (0, 0)
    assert all(p.signature_ok for p in receiver.accepted)
    # And the killed scheduler's tick stays visibly unfinished
    assert f":{holder.pid}" in " ".join(_unfinished_scans(stack))
