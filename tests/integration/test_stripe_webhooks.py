"""The webhook endpoint under real uvicorn with a real Redis: one stream entry per accepted
post, envelopes our ingress decodes and authenticates, nothing for refusals; and the
`orderflow webhooks` command serving it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn

from tasks.messages.catalogue import decode
from tasks.messages.signing import authenticate
from tests.fakes import stripe_events as se
from tests.support import wait_until
from workers import processes
from workers.http.stripe_webhooks import PATH, create_app, envelope_id, redis_enqueuer
from workers.queue.streams import ENVELOPE_FIELD, INGRESS_STREAM

pytestmark = pytest.mark.integration

KEYS = {se.SIGNING_KEY[0]: se.SIGNING_KEY[1]}
MAX_BYTES = 256 * 1024


class Stream:
    """Entries added to the ingress stream since the test began; removed afterwards."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        last: Any = client.xrevrange(INGRESS_STREAM, count=1)
        self.start: bytes = last[0][0] if last else b"0-0"

    def added(self) -> list[bytes]:
        entries: Any = self.client.xrange(INGRESS_STREAM, min=self.start)
        return [fields[ENVELOPE_FIELD] for entry_id, fields in entries if entry_id != self.start]

    def remove_added(self) -> None:
        entries: Any = self.client.xrange(INGRESS_STREAM, min=self.start)
        ids = [entry_id for entry_id, _ in entries if entry_id != self.start]
        if ids:
            self.client.xdel(INGRESS_STREAM, *ids)


@pytest.fixture
def stream(redis_url: str) -> Iterator[Stream]:
    client = redis.Redis.from_url(redis_url)
    watched = Stream(client)
    yield watched
    watched.remove_added()
    client.close()


def serve_in_thread(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Real uvicorn on a free loopback port (bound here, so no race for the port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 10, 0.02)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def endpoint(redis_url: str) -> Iterator[httpx.Client]:
    client = redis.Redis.from_url(redis_url)
    app = create_app(se.WEBHOOK_SECRET, redis_enqueuer(client), signing_key=se.SIGNING_KEY)
    server, thread, base_url = serve_in_thread(app)
    with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as http:
        yield http
    server.should_exit = True
    thread.join(timeout=10)
    client.close()


def post(http: httpx.Client, value: dict[str, Any], **header_args: Any) -> httpx.Response:
    raw = se.body(value)
    return http.post(PATH, content=raw, headers=se.headers(raw, **header_args))


def test_an_accepted_event_is_one_entry_our_ingress_accepts(
    endpoint: httpx.Client, stream: Stream
) -> None:
    # When a handled event is posted
    response = post(endpoint, se.event())
    # Then exactly one entry was added, holding a valid, signed stripe.event envelope
    assert (response.status_code, response.json()) == (200, {"received": "evt_3PTest0000000001"})
    added = stream.added()
    assert len(added) == 1
    message = decode(added[0], MAX_BYTES)
    assert authenticate(message, KEYS).ok
    assert message.envelope.type == "stripe.event"
    assert message.envelope.id == envelope_id("evt_3PTest0000000001")
    assert message.raw["data"]["data"]["object"]["id"] == "pi_3PTest0000000001"


def test_a_redelivered_event_keeps_its_envelope_id(endpoint: httpx.Client, stream: Stream) -> None:
    # Given an event delivered once
    first = post(endpoint, se.event("charge.refunded", "evt_redelivered01", "ch_1abc"))
    # When Stripe delivers it again (signed anew, a little later)
    second = post(endpoint, se.event("charge.refunded", "evt_redelivered01", "ch_1abc"))
    # Then two entries with one envelope id: the ingress inbox keeps only the first
    assert (first.status_code, second.status_code) == (200, 200)
    ids = [decode(body, MAX_BYTES).envelope.id for body in stream.added()]
    assert ids == [envelope_id("evt_redelivered01")] * 2


def test_refused_and_ignored_posts_add_nothing(endpoint: httpx.Client, stream: Stream) -> None:
    # When a forged, a stale and an ignored event are posted
    forged = post(endpoint, se.event(), secret="whsec_forged")
    stale = post(endpoint, se.event(), at=1_700_000_000)
    ignored = post(endpoint, se.event("customer.created", "evt_ignored01", "cus_1"))
    # Then 400, 400 and 200 ignored, and the stream is untouched
    assert (forged.status_code, forged.json()) == (400, {"error": "signature does not match"})
    assert (stale.status_code, stale.json()) == (400, {"error": "timestamp too old"})
    assert (ignored.status_code, ignored.json()) == (200, {"ignored": "customer.created"})
    assert stream.added() == []


def test_redis_down_answers_503() -> None:
    # Given an endpoint whose Redis is not there (a port nothing listens on)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    app = create_app(se.WEBHOOK_SECRET, redis_enqueuer(client), signing_key=se.SIGNING_KEY)
    server, thread, base_url = serve_in_thread(app)
    try:
        # When an event is posted
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as http:
            response = post(http, se.event())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    # Then Stripe is told to retry
    assert (response.status_code, response.json()) == (503, {"error": "queue unavailable"})


def test_the_webhooks_command_serves_the_endpoint(
    redis_url: str, stream: Stream, tmp_path: Path
) -> None:
    # Given `orderflow webhooks` started on a free port with our Redis
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = processes.child_env(
        {
            "ORDERFLOW_REDIS_URL": redis_url,
            "ORDERFLOW_DATA_DIR": str(tmp_path / "data"),
            "ORDERFLOW_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
            "ORDERFLOW_SIGNING_KEYS": f"{se.SIGNING_KEY[0]}:{se.SIGNING_KEY[1].decode()}",
            "ORDERFLOW_WEBHOOK_HOST": "127.0.0.1",
            "ORDERFLOW_WEBHOOK_PORT": str(port),
        }
    )
    proc = processes.start("webhooks", ["webhooks"], env, tmp_path / "logs")
    try:
        assert wait_until(lambda: "Uvicorn running" in proc.log_text(), 30), proc.log_text()
        # When an event is posted to it
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            response = post(http, se.event())
    finally:
        code = proc.terminate(timeout=10)
    # Then it is enqueued once, the process stops cleanly, and the secret was never logged
    assert response.json() == {"received": "evt_3PTest0000000001"}
    assert [decode(body, MAX_BYTES).envelope.id for body in stream.added()] == [
        envelope_id("evt_3PTest0000000001")
    ]
    assert code == 0
    assert se.WEBHOOK_SECRET not in proc.log_text()
