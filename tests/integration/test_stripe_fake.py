"""The local Stripe fake as the real `stripe` package sees it: states, idempotency rules, faults
and the exception class each fault turns into on the client side."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import stripe
from stripe.params import PaymentIntentCreateParams

from tests.fakes.stripe_faults import FaultKind, FaultPlan
from tests.fakes.stripe_model import HOLD_SECONDS, Effect
from tests.fakes.stripe_server import StripeFake

pytestmark = pytest.mark.integration

API_KEY = "sk_test_fake"
CAPTURE = ("POST", "/v1/payment_intents/{id}/capture")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    server = StripeFake.start(API_KEY, seed=7, timeout_delay=0.8, slow_delay=0.6)
    yield server
    server.stop()


def client_for(
    fake: StripeFake, *, timeout: float = 3.0, retries: int = 0, api_key: str = API_KEY
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": fake.base_url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def error_json(error: stripe.StripeError) -> dict[str, Any]:
    return cast(dict[str, Any], cast(dict[str, Any], error.json_body)["error"])


def wait_until(condition: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_create_confirm_capture_retrieve(fake: StripeFake) -> None:
    # Given a client pointed at the fake
    client = client_for(fake)
    # When a manual-capture PaymentIntent is created and confirmed, then partly captured
    pi = client.v1.payment_intents.create(
        {
            "amount": 1000,
            "currency": "eur",
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"order": "M9681118"},
            "expand": ["latest_charge"],
        }
    )
    captured = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 600})
    read = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    # Then the states and amounts are Stripe's
    assert (pi.status, pi.amount_capturable, pi.metadata["order"]) == (
        "requires_capture",
        1000,
        "M9681118",
    )
    charge = pi.latest_charge
    assert isinstance(charge, stripe.Charge)
    card = charge.payment_method_details.card if charge.payment_method_details else None
    assert card is not None
    assert card.capture_before == pi.created + HOLD_SECONDS
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        600,
        0,
    )
    assert read.status == "succeeded"
    assert isinstance(read.latest_charge, stripe.Charge)
    assert read.latest_charge.amount_captured == 600
    assert isinstance(captured.latest_charge, str)  # not expanded unless asked
    assert [(e.kind, e.pi_id, e.amount) for e in fake.effects] == [
        ("create", pi.id, 1000),
        ("capture", pi.id, 600),
    ]
    assert fake.requests == {
        ("POST", "/v1/payment_intents"): 1,
        CAPTURE: 1,
        ("GET", "/v1/payment_intents/{id}"): 1,
    }


def test_client_sends_its_own_idempotency_key_on_every_post(fake: StripeFake) -> None:
    # Given an authorized PaymentIntent
    pi_id = fake.create_authorized_intent(500)
    client = client_for(fake)
    # When it is captured without an idempotency key of ours
    captured = client.v1.payment_intents.capture(pi_id)
    # Then the library generated one (a UUID), and the effect was recorded under it
    assert captured.last_response is not None
    generated = captured.last_response.idempotency_key
    assert generated is not None
    assert len(generated) == 36
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 500, generated)]


def test_idempotent_replay_returns_same_object_without_new_effect(fake: StripeFake) -> None:
    # Given a capture done under our key
    pi_id = fake.create_authorized_intent(1200)
    client = client_for(fake)
    first = client.v1.payment_intents.capture(pi_id, {}, {"idempotency_key": "order:1:capture"})
    # When the same request is sent again with the same key
    second = client.v1.payment_intents.capture(pi_id, {}, {"idempotency_key": "order:1:capture"})
    # Then the stored response is replayed and nothing happens twice
    assert second.to_dict() == first.to_dict()
    assert second.last_response is not None
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 1200, "order:1:capture")]
    assert fake.requests[CAPTURE] == 2


def test_same_key_with_other_parameters_or_path_is_an_idempotency_error(fake: StripeFake) -> None:
    # Given a partial capture done under a key
    pi_id = fake.create_authorized_intent(1000)
    client = client_for(fake)
    client.v1.payment_intents.capture(pi_id, {"amount_to_capture": 400}, {"idempotency_key": "k"})
    # When the key is reused with another amount, and on another endpoint
    with pytest.raises(stripe.IdempotencyError) as other_params:
        client.v1.payment_intents.capture(
            pi_id, {"amount_to_capture": 500}, {"idempotency_key": "k"}
        )
    with pytest.raises(stripe.IdempotencyError) as other_path:
        client.v1.payment_intents.cancel(pi_id, {}, {"idempotency_key": "k"})
    # Then both are refused with 400 idempotency_error and nothing else happened
    assert (other_params.value.http_status, other_path.value.http_status) == (400, 400)
    assert error_json(other_params.value)["type"] == "idempotency_error"
    assert fake.effect_counts() == {"create": 1, "capture": 1}


def test_second_request_while_first_in_flight_gets_409(fake: StripeFake) -> None:
    # Given a capture that the fake answers slowly (0.6 s), started in a thread
    pi_id = fake.create_authorized_intent(700)
    fake.faults.inject_next(r"/capture$", FaultKind.SLOW)
    results: list[str] = []
    options: stripe.RequestOptions = {"idempotency_key": "order:2:capture"}
    first = threading.Thread(
        target=lambda: results.append(
            client_for(fake).v1.payment_intents.capture(pi_id, {}, options).status
        )
    )
    first.start()
    wait_until(lambda: len(fake.keys) == 1)
    # When the same key is used while the first request is still running
    with pytest.raises(stripe.APIError) as in_use:
        client_for(fake).v1.payment_intents.capture(pi_id, {}, options)
    first.join(timeout=5)
    # Then the second gets 409 idempotency_key_in_use and the first succeeds, once
    assert in_use.value.http_status == 409
    assert error_json(in_use.value)["code"] == "idempotency_key_in_use"
    assert results == ["succeeded"]
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 700, "order:2:capture")]


def test_500_after_effect_is_stored_and_replayed(fake: StripeFake) -> None:
    # Given a capture that succeeds at the fake but answers 500
    pi_id = fake.create_authorized_intent(900)
    fake.faults.inject_next(r"/capture$", FaultKind.SERVER_ERROR_AFTER)
    client = client_for(fake)
    options: stripe.RequestOptions = {"idempotency_key": "order:3:capture"}
    with pytest.raises(stripe.APIError) as first:
        client.v1.payment_intents.capture(pi_id, {}, options)
    # When the client retries with the same key
    with pytest.raises(stripe.APIError) as replay:
        client.v1.payment_intents.capture(pi_id, {}, options)
    # Then the stored 500 comes back, though the money was captured exactly once
    assert (first.value.http_status, replay.value.http_status) == (500, 500)
    assert replay.value.headers is not None
    assert replay.value.headers["idempotent-replayed"] == "true"
    assert fake.intent(pi_id)["status"] == "succeeded"
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 900, "order:3:capture")]


def test_500_before_has_no_effect_and_is_not_stored(fake: StripeFake) -> None:
    # Given a capture refused with 500 before reaching the endpoint
    pi_id = fake.create_authorized_intent(900)
    fake.faults.inject_next(r"/capture$", FaultKind.SERVER_ERROR_BEFORE)
    client = client_for(fake)
    options: stripe.RequestOptions = {"idempotency_key": "order:4:capture"}
    with pytest.raises(stripe.APIError) as first:
        client.v1.payment_intents.capture(pi_id, {}, options)
    assert fake.captures_for(pi_id) == []
    # When retried with the same key
    retried = client.v1.payment_intents.capture(pi_id, {}, options)
    # Then it executes this time
    assert first.value.http_status == 500
    assert retried.status == "succeeded"
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 900, "order:4:capture")]


@pytest.mark.parametrize(
    ("kind", "captured"), [(FaultKind.RESET_BEFORE, 0), (FaultKind.RESET_AFTER, 1)]
)
def test_connection_reset_is_an_api_connection_error(
    fake: StripeFake, kind: FaultKind, captured: int
) -> None:
    # Given a capture whose connection is reset before or after the effect
    pi_id = fake.create_authorized_intent(400)
    fake.faults.inject_next(r"/capture$", kind)
    client = client_for(fake)
    options: stripe.RequestOptions = {"idempotency_key": f"reset:{kind}"}
    # When the client sends it
    with pytest.raises(stripe.APIConnectionError) as reset:
        client.v1.payment_intents.capture(pi_id, {}, options)
    effects_after_reset = len(fake.captures_for(pi_id))
    retried = client.v1.payment_intents.capture(pi_id, {}, options)
    # Then the library says "retryable", and a retry with the key ends with one capture
    assert reset.value.should_retry is True
    assert "Connection reset by peer" in str(reset.value)
    assert effects_after_reset == captured
    assert retried.status == "succeeded"
    assert retried.last_response is not None
    replayed = "true" if captured else None
    assert retried.last_response.headers.get("idempotent-replayed") == replayed
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 400, f"reset:{kind}")]


def test_timeout_after_effect_is_a_connection_error_with_one_effect(fake: StripeFake) -> None:
    # Given a capture answered 0.8 s late to a client that waits 0.3 s
    pi_id = fake.create_authorized_intent(650)
    fake.faults.inject_next(r"/capture$", FaultKind.TIMEOUT_AFTER)
    client = client_for(fake, timeout=0.3)
    options: stripe.RequestOptions = {"idempotency_key": "order:5:capture"}
    # When it is sent
    with pytest.raises(stripe.APIConnectionError) as timed_out:
        client.v1.payment_intents.capture(pi_id, {}, options)
    # Then the client gave up, yet the capture happened once and a retry replays it
    assert "ReadTimeout" in str(timed_out.value)
    assert timed_out.value.should_retry is True
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 650, "order:5:capture")]
    retried = client.v1.payment_intents.capture(pi_id, {}, options)
    assert retried.status == "succeeded"
    assert len(fake.captures_for(pi_id)) == 1


@pytest.mark.parametrize(
    ("kind", "header"),
    [(FaultKind.RATE_LIMIT_RETRY, "true"), (FaultKind.RATE_LIMIT_NO_RETRY, "false")],
)
def test_429_carries_should_retry_header(fake: StripeFake, kind: FaultKind, header: str) -> None:
    # Given a rate-limited capture
    pi_id = fake.create_authorized_intent(300)
    fake.faults.inject_next(r"/capture$", kind)
    client = client_for(fake)
    # When it is sent without library retries
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.payment_intents.capture(pi_id, {}, {"idempotency_key": f"rl:{kind}"})
    # Then it is a RateLimitError with the header, and nothing was stored or done
    assert limited.value.http_status == 429
    assert limited.value.headers is not None
    assert limited.value.headers["stripe-should-retry"] == header
    assert fake.captures_for(pi_id) == []
    assert len(fake.keys) == 0


def test_library_retries_follow_should_retry_header(fake: StripeFake) -> None:
    # Given two captures, one limited with "retry", one with "do not retry"
    retry_id = fake.create_authorized_intent(100)
    stop_id = fake.create_authorized_intent(200)
    fake.faults.inject_next(retry_id, FaultKind.RATE_LIMIT_RETRY)
    fake.faults.inject_next(stop_id, FaultKind.RATE_LIMIT_NO_RETRY)
    client = client_for(fake, retries=1)
    # When sent by a client allowed one retry
    retried = client.v1.payment_intents.capture(retry_id)
    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.capture(stop_id)
    # Then the library retried only the first (same generated key), which then succeeded
    assert retried.status == "succeeded"
    assert fake.effect_counts() == {"create": 2, "capture": 1}
    assert fake.requests[CAPTURE] == 3


def test_decline_on_capture_is_a_card_error(fake: StripeFake) -> None:
    # Given an authorization whose capture will be declined
    pi_id = fake.create_authorized_intent(800, decline=True)
    # When it is captured
    with pytest.raises(stripe.CardError) as declined:
        client_for(fake).v1.payment_intents.capture(pi_id)
    # Then 402 card_declined, and no money moved
    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    assert error_json(declined.value)["decline_code"] == "generic_decline"
    assert fake.intent(pi_id)["status"] == "requires_payment_method"
    assert fake.captures_for(pi_id) == []


def test_decline_on_confirm_is_a_card_error(fake: StripeFake) -> None:
    # Given Stripe's declining test payment method
    client = client_for(fake)
    # When a PaymentIntent is created and confirmed with it
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(
            {
                "amount": 500,
                "currency": "usd",
                "capture_method": "manual",
                "confirm": True,
                "payment_method": "pm_card_chargeDeclined",
            }
        )
    # Then the intent exists, waiting for another payment method
    assert declined.value.error is not None
    assert declined.value.error.payment_intent is not None
    assert declined.value.error.payment_intent.status == "requires_payment_method"
    assert fake.effect_counts() == {"create": 1}


def test_cancel_after_capture_is_unexpected_state(fake: StripeFake) -> None:
    # Given a captured PaymentIntent
    pi_id = fake.create_authorized_intent(1000)
    client = client_for(fake)
    client.v1.payment_intents.capture(pi_id)
    # When it is cancelled
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.cancel(pi_id)
    # Then 400 payment_intent_unexpected_state, carrying the intent's current state
    assert (refused.value.http_status, refused.value.code) == (
        400,
        "payment_intent_unexpected_state",
    )
    assert refused.value.error is not None
    assert refused.value.error.payment_intent is not None
    assert refused.value.error.payment_intent.status == "succeeded"
    assert fake.effect_counts() == {"create": 1, "capture": 1}


def test_cancel_releases_the_hold_and_blocks_capture(fake: StripeFake) -> None:
    # Given an authorized PaymentIntent
    pi_id = fake.create_authorized_intent(450)
    client = client_for(fake)
    # When it is cancelled, then someone tries to capture it
    canceled = client.v1.payment_intents.cancel(pi_id, {"cancellation_reason": "abandoned"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.capture(pi_id)
    # Then the hold is released and nothing is captured
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert refused.value.code == "payment_intent_unexpected_state"
    assert [(e.kind, e.amount) for e in fake.effects] == [("create", 450), ("cancel", 450)]


def test_expired_hold_is_canceled_automatically(fake: StripeFake) -> None:
    # Given a hold that must be captured within the hour
    capture_before = fake.clock.now() + 3600
    pi_id = fake.create_authorized_intent(1500, capture_before=capture_before)
    client = client_for(fake)
    still_open = client.v1.payment_intents.retrieve(pi_id).status
    # When the hour passes
    fake.clock.advance(3600)
    read = client.v1.payment_intents.retrieve(pi_id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.capture(pi_id)
    # Then Stripe has cancelled it, and capture is refused
    assert still_open == "requires_capture"
    assert (read.status, read.cancellation_reason) == ("canceled", "automatic")
    assert refused.value.code == "payment_intent_unexpected_state"
    assert fake.captures_for(pi_id) == []


def test_refunds_partial_then_rest_then_refused(fake: StripeFake) -> None:
    # Given a captured PaymentIntent of 1000
    pi_id = fake.create_authorized_intent(1000)
    client = client_for(fake)
    client.v1.payment_intents.capture(pi_id)
    # When 300 is refunded, then too much, then the rest, then again
    partial = client.v1.refunds.create({"payment_intent": pi_id, "amount": 300})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": pi_id, "amount": 800})
    rest = client.v1.refunds.create({"payment_intent": pi_id})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"payment_intent": pi_id})
    # Then two refunds exist, summing to the capture, and the charge says so
    assert (partial.amount, partial.status, rest.amount) == (300, "succeeded", 700)
    assert (too_much.value.code, again.value.code) == (
        "amount_too_large",
        "charge_already_refunded",
    )
    charge = fake.intent(pi_id)["latest_charge"]
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, True)
    listed = client.v1.refunds.list({"payment_intent": pi_id})
    assert sorted(r.amount for r in listed.data) == [300, 700]
    assert [(e.kind, e.amount) for e in fake.effects if e.kind == "refund"] == [
        ("refund", 300),
        ("refund", 700),
    ]


def test_refund_of_uncaptured_intent_is_refused(fake: StripeFake) -> None:
    # Given an authorization not yet captured
    pi_id = fake.create_authorized_intent(1000)
    # When a refund is asked for
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_for(fake).v1.refunds.create({"payment_intent": pi_id})
    # Then it is refused and nothing is refunded
    assert refused.value.code == "payment_intent_unexpected_state"
    assert fake.effect_counts() == {"create": 1}


def test_wrong_api_key_is_an_authentication_error(fake: StripeFake) -> None:
    # Given a client with the wrong key
    pi_id = fake.create_authorized_intent(100)
    client = client_for(fake, api_key="sk_test_wrong_secret")
    # When it tries to capture
    with pytest.raises(stripe.AuthenticationError) as refused:
        client.v1.payment_intents.capture(pi_id)
    # Then 401, the key is not echoed, and nothing happened
    assert refused.value.http_status == 401
    assert "sk_test_wrong_secret" not in str(refused.value.http_body)
    assert fake.captures_for(pi_id) == []


def test_keys_are_pruned_after_the_configured_age() -> None:
    # Given a fake that keeps idempotency keys for one hour
    with StripeFake.start(API_KEY, idempotency_ttl=3600) as fake:
        client = client_for(fake)
        params: PaymentIntentCreateParams = {"amount": 100, "currency": "usd"}
        options: stripe.RequestOptions = {"idempotency_key": "create:1"}
        first = client.v1.payment_intents.create(params, options)
        # When the key is reused just before and just after the hour
        fake.clock.advance(3599)
        replayed = client.v1.payment_intents.create(params, options)
        fake.clock.advance(1)
        fresh = client.v1.payment_intents.create(params, options)
        # Then the first reuse is a replay, the second a new PaymentIntent
        assert replayed.id == first.id
        assert fresh.id != first.id
        assert fake.effect_counts() == {"create": 2}


def test_seeded_plan_faults_only_state_changing_posts() -> None:
    # Given two plans with the same seed, and a fake failing every POST before any effect
    draws = [FaultPlan(11, 0.5, ["500_before", "slow"]) for _ in range(2)]
    with StripeFake.start(API_KEY, seed=3, fault_rate=1.0, fault_kinds=["500_before"]) as fake:
        pi_id = fake.create_authorized_intent(100)
        client = client_for(fake)
        # When reads and writes are sent
        read = client.v1.payment_intents.retrieve(pi_id)
        with pytest.raises(stripe.APIError):
            client.v1.payment_intents.capture(pi_id)
        # Then the same seed gives the same schedule, and reads are never faulted
        assert [draws[0].draw() for _ in range(20)] == [draws[1].draw() for _ in range(20)]
        assert read.status == "requires_capture"
        assert [f.kind for f in fake.faults.fired] == [FaultKind.SERVER_ERROR_BEFORE]
        assert fake.captures_for(pi_id) == []


def test_runs_standalone_on_a_given_port() -> None:
    # Given a free loopback port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When the module is started as a program
    command = [sys.executable, "-m", "tests.fakes.stripe_server", "--port", str(port)]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/payment_intents",
                data=b"amount=100&currency=usd",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
                body = json.loads(response.read())
        finally:
            proc.terminate()
            proc.wait(timeout=5)
    # Then it serves the API
    assert banner == f"Stripe fake listening on http://127.0.0.1:{port} (Ctrl-C stops)\n"
    assert (body["object"], body["status"]) == ("payment_intent", "requires_payment_method")
