"""Scale-out: three `orderflow worker` processes and two `orderflow scheduler` processes on one
PostgreSQL and one Redis, with ten copies of the demo's morning (plus card shipments and the
demo's outbox probes). Every effect is counted where it lands (the SMTP sink, the Stripe fake,
the egress stream, the database) and must be there exactly once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.db.tables import (
    InboxEntry,
    Notification,
    Order,
    OutboxJob,
    ParkedMessage,
    ProbeEffect,
    QuarantinedMessage,
)
from tasks.outbox.jobs import PROBE_JOB
from tests import factories as f
from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.support import wait_until
from workers import processes
from workers.demo.data import scenario
from workers.demo.report import EXPECTED_REASONS
from workers.demo.smtp_sink import SmtpSink
from workers.queue.streams import EGRESS_STREAM, ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.e2e
COPIES = 10
SHIPPED = ("1003", "1007")  # card orders of each copy shipped on top of the demo's morning
PROBES = 200  # the demo's outbox round trip
CUSTOMER_EMAILS = 11  # per copy: the demo's 7, and "shipped" and "paid" for each card shipment
API_KEY = "sk_test_scale_out_3"
SETTINGS = {
    "signing_keys": f.SIGNING_KEYS_SETTING, "stripe_api_key": API_KEY,
    "outbox_redeliver_after_s": 10, "scheduler_tick_s": 0.5, "deadline_scan_s": 1,
}  # fmt: skip
SETTLE_S = 100.0


@pytest.fixture
def stripe() -> Iterator[StripeFake]:
    with StripeFake.start(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as server:
        yield server


def _load(fake: StripeFake) -> tuple[list[bytes], dict[str, str]]:
    """Every copy's messages, then its card shipments; and the intent of every card order."""
    intents: dict[str, str] = {}

    def authorize(number: str, amount: int) -> str:
        intents[number] = fake.create_authorized_intent(amount, "eur")
        return intents[number]

    now = datetime.now(UTC)
    bodies = [body for copy in range(COPIES) for _, body in
              scenario(now, f.KEY_ID, f.SECRET, prefix=f"S{copy}",
                       intent_for=authorize)]  # fmt: skip
    shipments = [f.envelope("order.shipped", number=f"S{copy}-{n}", notify_customer=True,
                            tracking_numbers=[f"TRK-S{copy}-{n}"], carrier="DHL")
                 for copy in range(COPIES) for n in SHIPPED]  # fmt: skip
    return bodies + [f.body(s) for s in shipments], intents


def _count(stack: Stack, model: type, *where: Any) -> int:
    with stack.rt.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _emails(stack: Stack) -> dict[str, str]:
    """Every email notification's Message-ID (its key until sent) and status."""
    query = select(Notification.message_id, Notification.key, Notification.status).where(
        Notification.channel == "email"
    )
    with stack.rt.db.sessions() as session:
        return {str(mid or key): status for mid, key, status in session.execute(query)}


def _staged_events(stack: Stack) -> set[str]:
    """The id of every egress event staged in the outbox (singly or in batches)."""
    with stack.rt.db.sessions() as session:
        payloads = session.scalars(select(OutboxJob.payload).where(OutboxJob.job.like("egress.%")))
        events = [e for p in payloads for e in ([p["event"]] if "event" in p else p["events"])]
    return {str(e["id"]) for e in events}


def _excess(counts: Counter[str], expected: set[str]) -> tuple[int, int]:
    """(expected effects missing, effects beyond one per expected id or not expected at all)."""
    lost = sum(1 for key in expected if counts[key] == 0)
    return lost, sum(n - 1 for n in counts.values()) + len(set(counts) - expected)


@dataclass(frozen=True)
class Tally:
    """Effects counted where they landed, judged against what the database says was due."""

    orders: int
    emails: int
    customer_emails: int
    captures: int
    egress: int
    probes: int
    quarantined: Counter[str]
    parked: int
    lost: int
    duplicated: int

    @classmethod
    def take(cls, stack: Stack, sink: SmtpSink, fake: StripeFake, intents: dict[str, str]) -> Tally:
        at_sink = Counter(str(m.message_id) for m in sink.messages)
        captures = Counter(e.pi_id for e in fake.effects if e.kind == "capture")
        shipped = {intents[f"S{c}-{n}"] for c in range(COPIES) for n in SHIPPED}
        events = Counter(_egress_ids(stack))
        probes = Counter(_probe_keys(stack))
        orders = _count(stack, Order)
        judged = [_excess(at_sink, set(_emails(stack))), _excess(captures, shipped),
                  _excess(events, _staged_events(stack)),
                  _excess(probes, {f"scale:{i}" for i in range(PROBES)})]  # fmt: skip
        return cls(
            orders=orders, emails=sink.count(),
            customer_emails=sum(1 for m in sink.messages if m.rcpt_tos[0].endswith("@example.com")),
            captures=sum(captures.values()), egress=sum(events.values()),
            probes=sum(probes.values()), quarantined=_reasons(stack),
            parked=_count(stack, ParkedMessage),
            lost=12 * COPIES - orders + sum(lost for lost, _ in judged),
            duplicated=sum(dup for _, dup in judged),
        )  # fmt: skip

    def line(self) -> str:
        return (f"scale-out: workers=3 schedulers=2 copies={COPIES} orders={self.orders} "
                f"emails={self.emails} customer_emails={self.customer_emails} "
                f"captures={self.captures} egress={self.egress} probes={self.probes} "
                f"quarantined={sum(self.quarantined.values())} parked={self.parked} "
                f"duplicated={self.duplicated} lost={self.lost}")  # fmt: skip


def _egress_ids(stack: Stack) -> list[str]:
    """The id of every event on the egress stream, as a consumer reads them."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    entries: Any = client.xrange(EGRESS_STREAM)  # RESP2: [(id, {field: value})]
    client.close()
    return [str(json.loads(fields[b"event"])["id"]) for _, fields in entries]


def _probe_keys(stack: Stack) -> list[str]:
    with stack.rt.db.sessions() as session:
        return list(session.scalars(select(ProbeEffect.probe_key)))


def _reasons(stack: Stack) -> Counter[str]:
    """Refusals by reason, counting deliveries: the same bytes refused twice are one record."""
    query = select(QuarantinedMessage.reason, func.sum(QuarantinedMessage.deliveries)).group_by(
        QuarantinedMessage.reason
    )
    with stack.rt.db.sessions() as session:
        return Counter({str(reason): int(n) for reason, n in session.execute(query)})


def _settled(stack: Stack, sink: SmtpSink, fake: StripeFake, unique: int) -> bool:
    emails = _emails(stack)
    return (
        _count(stack, InboxEntry) >= unique
        and sum(_reasons(stack).values()) >= 4 * COPIES
        and fake.effect_counts().get("capture", 0) >= len(SHIPPED) * COPIES
        and _count(stack, OutboxJob, OutboxJob.status == "pending") == 0
        and bool(emails) and set(emails.values()) == {"sent"}
        and sink.count() >= len(emails)
    )  # fmt: skip


def _progress(stack: Stack, sink: SmtpSink, fake: StripeFake) -> str:
    """Where things stand (for a failure message)."""
    query = select(OutboxJob.job, OutboxJob.status, func.count()).group_by(
        OutboxJob.job, OutboxJob.status
    )
    with stack.rt.db.sessions() as session:
        jobs = session.execute(query).all()
    return (f"inbox={_count(stack, InboxEntry)} quarantine={_reasons(stack)} "
            f"fake={fake.effect_counts()} emails={Counter(_emails(stack).values())} "
            f"sink={sink.count()} jobs={jobs}")  # fmt: skip


def _ready(proc: processes.OrderflowProcess) -> bool:
    """Wait (bounded) until the worker's process is consuming."""
    return wait_until(lambda: " ready: " in proc.log_text(), 90)


def _publish(stack: Stack, bodies: list[bytes]) -> None:
    """What producers do (one XADD each), and the demo's probe jobs committed to the outbox."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    pipe = client.pipeline(transaction=False)
    for body in bodies:
        pipe.xadd(INGRESS_STREAM, {ENVELOPE_FIELD: body})
    pipe.execute()
    client.close()
    with stack.rt.new_uow() as uow:
        for index in range(PROBES):
            uow.stage(PROBE_JOB, f"scale:probe:{index}", {"key": f"scale:{index}"})
        uow.commit()


def _status(stack: Stack) -> tuple[int, dict[str, Any]]:
    """`orderflow status --json` as an operator runs it against this deployment."""
    done = subprocess.run([sys.executable, "-m", "workers", "status", "--json"], env=stack.env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("stack", [SETTINGS], indirect=True)
def test_three_workers_and_two_schedulers_have_every_effect_exactly_once(
    stack: Stack, stripe: StripeFake, sink: SmtpSink
) -> None:
    # Given three workers (each its own supervisor) and two schedulers on one PostgreSQL and Redis
    stack.env["ORDERFLOW_STRIPE_API_BASE"] = stripe.base_url
    stack.env["ORDERFLOW_SMTP_URL"] = sink.url
    started = time.monotonic()
    workers = [stack.start(f"worker-{i}", "worker", "--processes", "1", "--threads", "4")
               for i in range(3)]  # fmt: skip
    schedulers = [stack.start(f"scheduler-{i}", "scheduler") for i in range(2)]
    bodies, intents = _load(stripe)
    for proc in workers:
        assert _ready(proc), proc.log_text()[-2000:]
    # When ten copies of the demo's morning arrive as producers send them, with the probes
    _publish(stack, bodies)
    unique = len({b for b in bodies if b.startswith(b"{")}) - 3 * COPIES  # bad JSON: no inbox
    # Then everything settles, and after a grace period for late duplicates ...
    settled = wait_until(lambda: _settled(stack, sink, stripe, unique), SETTLE_S, 0.5)
    assert settled, _progress(stack, sink, stripe)
    assert wait_until(lambda: False, 3, 0.5) is False
    assert all(p.popen.poll() is None for p in [*workers, *schedulers])
    # ... each effect is there exactly once
    tally = Tally.take(stack, sink, stripe, intents)
    print(tally.line() + f" messages={len(bodies)} seconds={time.monotonic() - started:.1f}")
    assert (tally.duplicated, tally.lost) == (0, 0)
    assert (tally.orders, tally.captures, tally.probes) == (12 * COPIES, 2 * COPIES, PROBES)
    assert tally.customer_emails == CUSTOMER_EMAILS * COPIES
    assert tally.quarantined == Counter({r: n * COPIES for r, n in EXPECTED_REASONS.items()})
    assert _count(stack, ParkedMessage, ParkedMessage.awaits == "manufacturer:oem-nobody") == COPIES
    # And `orderflow status` sees this deployment: both schedulers ticking, nothing stuck or
    # waiting; only the quarantined bad inputs (and, on weekdays, missed deadlines) need a person
    code, status = _status(stack)
    owners = {job["owner"] for job in status["scheduler"]["jobs"]}
    print(f"status: exit={code} attention={[i['reason'] for i in status['attention']]} "
          f"scheduler_owners={len(owners)}")  # fmt: skip
    assert code == 1
    assert {i["reason"] for i in status["attention"]} <= {"quarantine_held", "confirmation_overdue"}
    # Held records: the copies' non-JSON blob is the same bytes each time, so it is one record
    assert status["quarantine"]["held"] == 3 * COPIES + 1
    assert owners <= {f"{socket.gethostname()}:{p.pid}" for p in schedulers}
    assert status["outbox"]["pending"] == 0
