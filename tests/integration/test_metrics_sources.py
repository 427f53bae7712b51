"""Metrics read from real things: queue depths from a real Redis (and a Redis that is not
there), Stripe outcomes against the local Stripe fake, SMTP outcomes against the SMTP sink."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from functools import partial

import dramatiq
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from models.domain.errors import OrderflowError
from tests.fakes.stripe_faults import FaultKind
from tests.fakes.stripe_server import StripeFake
from tests.services import RedisServer
from workers.adapters import smtp as mail
from workers.adapters.stripe import StripeGateway
from workers.demo.smtp_sink import SmtpSink
from workers.queue import streams
from workers.queue.broker import build_broker
from workers.queue.queue_metrics import QueueCollector
from workers.settings import Settings

pytestmark = pytest.mark.integration

API_KEY = "sk_test_metrics_secret_1"


def sample(name: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float:
    """A sample's current value (0 when it does not exist yet)."""
    return registry.get_sample_value(name, labels) or 0.0


Reads = dict[str, Callable[[], float]]


def counted(reads: Reads, action: Callable[[], object]) -> dict[str, float]:
    """How much each read changed while `action` ran."""
    before = {key: read() for key, read in reads.items()}
    action()
    return {key: read() - before[key] for key, read in reads.items()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_queue_depths_and_the_ingress_stream_are_read_at_scrape_time(
    redis_server: RedisServer,
) -> None:
    # Given our own Redis with 3 messages on the bulk queue and 2 envelopes on the stream,
    # one of them delivered to a consumer and not yet acknowledged
    redis_server.flushall()
    broker = build_broker(redis_server.url, Settings(_env_file=None))
    for index in range(3):
        broker.enqueue(dramatiq.Message(queue_name="bulk", actor_name="run_job_bulk",
                                        args=(index,), kwargs={}, options={}))  # fmt: skip
    client = redis_server.client()
    streams.ensure_group(client)
    client.xadd(streams.INGRESS_STREAM, {streams.ENVELOPE_FIELD: b"{}"})
    client.xadd(streams.INGRESS_STREAM, {streams.ENVELOPE_FIELD: b"{}"})
    streams.read_new(client, "test:1:0", 1, 100)
    registry = CollectorRegistry()
    collector = QueueCollector(redis_server.url)
    registry.register(collector)
    # When it is scraped
    try:
        values = {
            "up": sample("orderflow_redis_up", registry),
            "bulk_ready": sample("orderflow_queue_messages", registry, queue="bulk", state="ready"),
            "bulk_busy": sample(
                "orderflow_queue_messages", registry, queue="bulk", state="in_progress"
            ),
            "default_ready": sample(
                "orderflow_queue_messages", registry, queue="default", state="ready"
            ),
            "length": sample("orderflow_ingress_stream_length", registry),
            "pending": sample("orderflow_ingress_pending", registry),
            "lag": sample("orderflow_ingress_lag", registry),
        }
        oldest = sample("orderflow_ingress_oldest_age_seconds", registry)
    finally:
        collector.close()
        broker.close()
        redis_server.flushall()
    # Then the depths are exact
    assert values == {"up": 1, "bulk_ready": 3, "bulk_busy": 0, "default_ready": 0,
                      "length": 2, "pending": 1, "lag": 1}  # fmt: skip
    assert 0 <= oldest < 60


def test_a_redis_that_is_not_there_gives_up_zero_quickly_and_no_failed_scrape() -> None:
    # Given a collector pointed at a port nobody listens on
    registry = CollectorRegistry()
    collector = QueueCollector(f"redis://127.0.0.1:{_free_port()}/0")
    registry.register(collector)
    # When it is scraped
    started = time.monotonic()
    up = sample("orderflow_redis_up", registry)
    depth = registry.get_sample_value(
        "orderflow_queue_messages", {"queue": "bulk", "state": "ready"}
    )
    elapsed = time.monotonic() - started
    collector.close()
    # Then it answers at once: Redis down, no depths
    assert (up, depth) == (0, None)
    assert elapsed < 3


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    server = StripeFake.start(API_KEY, seed=1)
    yield server
    server.stop()


def test_stripe_calls_are_counted_by_operation_and_outcome(fake: StripeFake) -> None:
    # Given a gateway to the fake, a hold, a hold the issuer declines, and a fault next time
    gateway = StripeGateway(API_KEY, fake.base_url, timeout_s=5.0)
    good = fake.create_authorized_intent(1000, "eur")
    declined = fake.create_authorized_intent(800, decline=True)
    stripe = "orderflow_stripe_requests_total"
    reads: Reads = {
        outcome: partial(sample, stripe, operation="capture", outcome=outcome)
        for outcome in ("succeeded", "declined", "refused", "unclear")
    }
    reads["auth"] = lambda: sample(stripe, operation="retrieve", outcome="auth_failed")
    reads["timed"] = lambda: sample("orderflow_stripe_request_seconds_count", operation="capture")

    def calls() -> None:
        gateway.capture(good, 1000, "m:1:capture")
        for intent, key in ((declined, "m:2:capture"), (good, "m:3:capture")):
            with pytest.raises(OrderflowError):
                gateway.capture(intent, 500 if intent == good else 800, key)
        fake.faults.inject_next(r"/capture$", FaultKind.SERVER_ERROR_BEFORE)
        with pytest.raises(OrderflowError):
            gateway.capture(fake.create_authorized_intent(300, "eur"), 300, "m:4:capture")
        with pytest.raises(OrderflowError):
            StripeGateway("sk_test_wrong_key", fake.base_url).retrieve(good)

    # When a capture succeeds, one is declined, one refused (already captured), one unclear,
    # and a read uses a wrong key
    changed = counted(reads, calls)
    # Then each outcome is counted once
    assert changed == {"succeeded": 1, "declined": 1, "refused": 1, "unclear": 1, "auth": 1,
                       "timed": 4}  # fmt: skip


def _email(to: str) -> EmailMessage:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "orders@shop.example", to, "Hi"
    email.set_content("hello")
    return email


def test_smtp_sends_are_counted_by_outcome() -> None:
    reads: Reads = {
        outcome: partial(sample, "orderflow_smtp_total", outcome=outcome)
        for outcome in ("sent", "recipient_refused", "smtp_deferred", "smtp_unreachable")
    }

    def sends() -> None:
        with SmtpSink.start() as sink:
            target = mail.parse_smtp_url(sink.url)
            mail.send(target, _email("ada@example.com"))
            sink.reject_recipient("gone@example.com", 550, "5.1.1 no such user")
            sink.temporary_failure(1, 451)
            for to in ("gone@example.com", "ada@example.com"):
                with pytest.raises(OrderflowError):
                    mail.send(target, _email(to))
            sink.go_down()
            with pytest.raises(OrderflowError):
                mail.send(target, _email("ada@example.com"))

    # When one email is sent, one refused, one deferred, one finds the server down
    changed = counted(reads, sends)
    # Then each outcome is counted once
    assert changed == {"sent": 1, "recipient_refused": 1, "smtp_deferred": 1,
                       "smtp_unreachable": 1}  # fmt: skip
