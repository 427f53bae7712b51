"""The webhook app in process (no sockets): what is enqueued, refused, ignored or answered 503,
and `orderflow webhooks` refusing to start without its secret or a signing key."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis
from starlette.applications import Starlette
from typer.testing import CliRunner

from tasks.messages.catalogue import decode
from tasks.messages.signing import authenticate
from tasks.messages.v1.stripe_event import StripeEventV1
from tests.fakes import stripe_events as se
from workers.cli.app import app as cli_app
from workers.http.stripe_webhooks import EVENT_NAMESPACE, PATH, create_app, envelope_id

KEYS = {se.SIGNING_KEY[0]: se.SIGNING_KEY[1]}


class InProcess:
    """Requests to the app through httpx's ASGI transport: no server, no sockets."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(
        self, method: str, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as c:
                return await c.request(method, PATH, content=content, headers=headers)

        return asyncio.run(send())

    def post(self, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.request("POST", content, headers)


def client_for(sent: list[bytes]) -> InProcess:
    return InProcess(create_app(se.WEBHOOK_SECRET, sent.append, signing_key=se.SIGNING_KEY))


def test_a_handled_event_is_enqueued_as_a_signed_reduced_envelope() -> None:
    # Given a verified payment_intent event
    sent: list[bytes] = []
    raw = se.body(se.event())
    # When it is posted
    response = client_for(sent).post(raw, se.headers(raw))
    # Then it is answered at once and one envelope is enqueued that our ingress accepts
    assert (response.status_code, response.json()) == (200, {"received": "evt_3PTest0000000001"})
    assert len(sent) == 1
    message = decode(sent[0], 256 * 1024)
    assert authenticate(message, KEYS).ok
    assert message.envelope.id == uuid.uuid5(EVENT_NAMESPACE, "evt_3PTest0000000001")
    assert message.envelope.id == envelope_id("evt_3PTest0000000001")
    assert (message.envelope.type, message.envelope.producer) == ("stripe.event", "stripe-webhook")
    assert message.envelope.occurred_at.isoformat() == "2026-03-02T09:15:00+00:00"
    assert isinstance(message.data, StripeEventV1)
    assert message.raw["data"] == {
        "id": "evt_3PTest0000000001",
        "type": "payment_intent.amount_capturable_updated",
        "created": 1_772_442_900,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {
            "object": {
                "id": "pi_3PTest0000000001",
                "object": "payment_intent",
                "metadata": {"order_number": "M9681118"},
            }
        },
    }


def test_every_handled_type_is_enqueued_and_others_are_ignored() -> None:
    # Given the five handled types and one other
    sent: list[bytes] = []
    client = client_for(sent)
    handled = [
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.expired",
    ]
    answers = []
    # When each is posted
    for number, type_ in enumerate([*handled, "customer.created"]):
        raw = se.body(se.event(type_, event_id=f"evt_{number}abc"))
        answers.append(client.post(raw, se.headers(raw)).json())
    # Then five are enqueued, and the other is acknowledged as ignored
    assert [decode(body, 256 * 1024).raw["data"]["type"] for body in sent] == handled
    assert answers[-1] == {"ignored": "customer.created"}
    assert [a for a in answers[:-1] if "received" not in a] == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "event is not a JSON object"),
        (b'{"type": "payment_intent.succeeded"}', "event without id or type"),
        (b'{"id": "evt_1abc", "type": 5}', "event without id or type"),
    ],
)
def test_bad_events_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    # Given a correctly signed body that is not a usable event
    sent: list[bytes] = []
    # When posted
    response = client_for(sent).post(raw, se.headers(raw))
    # Then 400 with the reason, and nothing is enqueued
    assert (response.status_code, response.json()) == (400, {"error": reason})
    assert sent == []


def test_an_event_we_cannot_represent_is_refused_without_echoing_values() -> None:
    # Given a handled event whose object has no id
    sent: list[bytes] = []
    value = se.event()
    del value["data"]["object"]["id"]
    raw = se.body(value)
    # When posted
    response = client_for(sent).post(raw, se.headers(raw))
    # Then it is refused naming the field, not its neighbours' values
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported event: data.object.id: Field required"}
    assert sent == []


def test_a_bad_signature_is_refused_and_never_shows_the_secret() -> None:
    # Given an event signed with another secret, and one not signed at all
    sent: list[bytes] = []
    client = client_for(sent)
    raw = se.body(se.event())
    forged = client.post(raw, se.headers(raw, secret="whsec_forged"))
    unsigned = client.post(raw, {"Content-Type": "application/json"})
    # Then both are 400 with a short reason, and nothing is enqueued
    assert (forged.status_code, forged.json()) == (400, {"error": "signature does not match"})
    assert unsigned.json() == {"error": "missing Stripe-Signature header"}
    assert se.WEBHOOK_SECRET not in forged.text + unsigned.text
    assert sent == []


def test_a_queue_failure_answers_503_so_stripe_retries() -> None:
    # Given a queue that is down
    def down(_body: bytes) -> None:
        raise redis.ConnectionError("Connection refused")

    client = InProcess(create_app(se.WEBHOOK_SECRET, down, signing_key=se.SIGNING_KEY))
    raw = se.body(se.event())
    # When an event is posted
    response = client.post(raw, se.headers(raw))
    # Then 503
    assert (response.status_code, response.json()) == (503, {"error": "queue unavailable"})


def test_an_oversized_body_is_refused_unread() -> None:
    sent: list[bytes] = []
    raw = b" " * (1024 * 1024 + 1)
    response = client_for(sent).post(raw, se.headers(raw))
    assert (response.status_code, response.json()) == (413, {"error": "body too large"})
    assert sent == []


def test_only_post_is_allowed() -> None:
    sent: list[bytes] = []
    assert client_for(sent).request("GET").status_code == 405


def test_an_empty_webhook_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        create_app("", list[bytes]().append)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ORDERFLOW_STRIPE_WEBHOOK_SECRET": "", "ORDERFLOW_SIGNING_KEYS": "k:s"},
            "ORDERFLOW_STRIPE_WEBHOOK_SECRET is not set",
        ),
        (
            {"ORDERFLOW_STRIPE_WEBHOOK_SECRET": "whsec_x", "ORDERFLOW_SIGNING_KEYS": ""},
            "ORDERFLOW_SIGNING_KEYS is empty",
        ),
        (
            {"ORDERFLOW_STRIPE_WEBHOOK_SECRET": "whsec_x", "ORDERFLOW_SIGNING_KEYS": "nocolon"},
            "entries must be key_id:secret",
        ),
    ],
)
def test_the_command_refuses_to_start_unconfigured(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a configuration the endpoint cannot work with
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORDERFLOW_ACCEPT_UNSIGNED", "false")
    # When `orderflow webhooks` starts
    result = CliRunner().invoke(cli_app, ["webhooks"])
    # Then it exits 2 with a clear message, before touching Redis
    assert result.exit_code == 2
    assert message in result.output
    assert "whsec_x" not in result.output
