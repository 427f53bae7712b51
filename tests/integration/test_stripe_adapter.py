"""The Stripe adapter against the local Stripe fake over HTTP: answers, idempotent replays,
refusals, and every fault of the fake's schedule turned into UnclearOutcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from models.domain.errors import PermanentError, RetryableError, UnclearOutcome
from tasks.ports import IntentState, RefundResult
from tests.fakes.stripe_faults import FaultKind
from tests.fakes.stripe_model import HOLD_SECONDS, Effect
from tests.fakes.stripe_server import StripeFake
from workers.adapters.stripe import StripeGateway
from workers.settings import Settings

pytestmark = pytest.mark.integration

API_KEY = "sk_test_adapter_secret_123"
FAULT_DELAY_S = 1.5  # how late the fake answers a timeout/slow fault
IMPATIENT_S = 0.5  # a client timeout well below FAULT_DELAY_S
CAPTURE = ("POST", "/v1/payment_intents/{id}/capture")


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    server = StripeFake.start(
        API_KEY, seed=1, timeout_delay=FAULT_DELAY_S, slow_delay=FAULT_DELAY_S
    )
    yield server
    server.stop()


@pytest.fixture
def gateway(fake: StripeFake) -> StripeGateway:
    return StripeGateway(API_KEY, fake.base_url, timeout_s=5.0)


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_capture_answers_the_captured_state(fake: StripeFake, gateway: StripeGateway) -> None:
    # Given a hold of 1000 that must be captured before a known time
    capture_before = fake.clock.now() + 3 * 24 * 3600
    pi_id = fake.create_authorized_intent(1000, "eur", capture_before=capture_before)
    charge_id = fake.intent(pi_id)["latest_charge"]["id"]
    # When 800 of it is captured under our key
    state = gateway.capture(pi_id, 800, "order:1:capture")
    # Then Stripe's state comes back, and the fake captured once under that key
    assert state == IntentState(
        id=pi_id,
        status="succeeded",
        amount=1000,
        amount_capturable=0,
        amount_received=800,
        amount_refunded=0,
        currency="eur",
        capture_before=datetime.fromtimestamp(capture_before, tz=UTC),
        latest_charge=charge_id,
        cancellation_reason=None,
    )
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 800, "order:1:capture")]
    assert fake.effect_counts() == {"create": 1, "capture": 1}


def test_retrieve_reads_capture_before_of_an_open_hold(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a fresh hold (Stripe's default of 7 days)
    pi_id = fake.create_authorized_intent(500)
    created = fake.intent(pi_id)["created"]
    # When it is read
    state = gateway.retrieve(pi_id)
    # Then the expiry is an aware UTC time, and reading changed nothing
    assert state.capture_before == datetime.fromtimestamp(created + HOLD_SECONDS, tz=UTC)
    assert state.capture_before is not None
    assert state.capture_before.tzinfo is UTC
    assert (state.status, state.amount_capturable, state.amount_received) == (
        "requires_capture",
        500,
        0,
    )
    assert fake.effect_counts() == {"create": 1}


def test_replay_with_the_same_key_gives_the_same_answer_and_one_effect(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a capture done under our key
    pi_id = fake.create_authorized_intent(1200)
    first = gateway.capture(pi_id, 1200, "order:2:capture")
    # When it is sent again with the same key and amount
    second = gateway.capture(pi_id, 1200, "order:2:capture")
    # Then the answer is the same and the money moved once
    assert second == first
    assert fake.requests[CAPTURE] == 2
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 1200, "order:2:capture")]


def test_same_key_with_another_amount_is_a_permanent_idempotency_error(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a partial capture under a key
    pi_id = fake.create_authorized_intent(1000)
    gateway.capture(pi_id, 400, "order:3:capture")
    # When the key is reused with another amount
    with pytest.raises(PermanentError) as refused:
        gateway.capture(pi_id, 500, "order:3:capture")
    # Then it is refused for good, and nothing more happened
    assert refused.value.reason == "idempotency_error"
    assert refused.value.detail.startswith("HTTP 400; idempotency_error; Keys for idempotent")
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 400, "order:3:capture")]


def test_a_declined_capture_is_permanent(fake: StripeFake, gateway: StripeGateway) -> None:
    # Given a hold whose capture the card issuer declines
    pi_id = fake.create_authorized_intent(800, decline=True)
    # When it is captured
    with pytest.raises(PermanentError) as declined:
        gateway.capture(pi_id, 800, "order:4:capture")
    # Then the decline is permanent, named by Stripe's code, and no money moved
    assert not isinstance(declined.value, RetryableError)
    assert declined.value.reason == "card_declined"
    assert declined.value.detail == (
        "HTTP 402; card_declined; decline_code=generic_decline; Your card was declined."
    )
    assert fake.captures_for(pi_id) == []


def test_capture_of_a_cancelled_intent_is_an_unexpected_state(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a released hold
    pi_id = fake.create_authorized_intent(450)
    gateway.cancel(pi_id, "order:5:cancel")
    # When it is captured
    with pytest.raises(PermanentError) as refused:
        gateway.capture(pi_id, 450, "order:5:capture")
    # Then Stripe's state error is permanent, and nothing was captured
    assert refused.value.reason == "payment_intent_unexpected_state"
    assert fake.effect_counts() == {"create": 1, "cancel": 1}


def test_an_unknown_intent_is_resource_missing(gateway: StripeGateway) -> None:
    # When an intent that does not exist is read
    with pytest.raises(PermanentError) as missing:
        gateway.retrieve("pi_doesnotexist")
    # Then Stripe's code is the reason
    assert missing.value.reason == "resource_missing"


@pytest.mark.parametrize(
    ("kind", "reason", "hint", "captured"),
    [
        (FaultKind.SERVER_ERROR_BEFORE, "stripe_server_error", "HTTP 500; An unknown error", 0),
        (FaultKind.SERVER_ERROR_AFTER, "stripe_server_error", "HTTP 500; An unknown error", 1),
        (FaultKind.RATE_LIMIT_RETRY, "rate_limited", "; should_retry=true", 0),
        (FaultKind.RATE_LIMIT_NO_RETRY, "rate_limited", "; should_retry=false", 0),
        (FaultKind.TIMEOUT_AFTER, "stripe_unreachable", "Network error: TimeoutError", 1),
        (FaultKind.RESET_BEFORE, "stripe_unreachable", "Connection reset by peer", 0),
        (FaultKind.RESET_AFTER, "stripe_unreachable", "Connection reset by peer", 1),
    ],
)
def test_each_fault_is_an_unclear_outcome_and_a_read_tells_the_truth(
    fake: StripeFake, kind: FaultKind, reason: str, hint: str, captured: int
) -> None:
    # Given a hold, and a fault on its next capture
    pi_id = fake.create_authorized_intent(600)
    fake.faults.inject_next(r"/capture$", kind)
    gateway = StripeGateway(API_KEY, fake.base_url, timeout_s=IMPATIENT_S)
    # When it is captured, then read
    with pytest.raises(UnclearOutcome) as unclear:
        gateway.capture(pi_id, 600, f"fault:{kind}")
    state = gateway.retrieve(pi_id)
    # Then the outcome is unclear (retryable), and the read shows what really happened
    assert unclear.value.reason == reason
    assert hint in unclear.value.detail
    assert isinstance(unclear.value, RetryableError)
    assert [f.kind for f in fake.faults.fired] == [kind]
    expected = ("succeeded", 600, 0) if captured else ("requires_capture", 0, 600)
    assert (state.status, state.amount_received, state.amount_capturable) == expected
    assert len(fake.captures_for(pi_id)) == captured


def test_a_stored_500_is_replayed_and_stays_unclear(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a capture that happened but was answered with a 500 Stripe keeps under the key
    pi_id = fake.create_authorized_intent(900)
    fake.faults.inject_next(r"/capture$", FaultKind.SERVER_ERROR_AFTER)
    with pytest.raises(UnclearOutcome):
        gateway.capture(pi_id, 900, "order:6:capture")
    # When it is retried with the same key
    with pytest.raises(UnclearOutcome) as replayed:
        gateway.capture(pi_id, 900, "order:6:capture")
    # Then the stored 500 comes back (so only a read can settle it), and one capture happened
    assert replayed.value.detail.endswith("(replayed by Stripe)")
    assert gateway.retrieve(pi_id).status == "succeeded"
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 900, "order:6:capture")]


def test_a_retry_after_a_reset_replays_the_stored_success(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a capture whose connection was reset after the effect
    pi_id = fake.create_authorized_intent(400)
    fake.faults.inject_next(r"/capture$", FaultKind.RESET_AFTER)
    with pytest.raises(UnclearOutcome):
        gateway.capture(pi_id, 400, "order:7:capture")
    # When it is retried with the same key
    state = gateway.capture(pi_id, 400, "order:7:capture")
    # Then Stripe's stored answer comes back, and the money moved once
    assert (state.status, state.amount_received) == ("succeeded", 400)
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 400, "order:7:capture")]


def test_a_slow_reply_is_unclear_in_flight_then_settles_once(fake: StripeFake) -> None:
    # Given a capture the fake answers later than the client waits
    pi_id = fake.create_authorized_intent(700)
    fake.faults.inject_next(r"/capture$", FaultKind.SLOW)
    gateway = StripeGateway(API_KEY, fake.base_url, timeout_s=IMPATIENT_S)
    with pytest.raises(UnclearOutcome) as timed_out:
        gateway.capture(pi_id, 700, "order:8:capture")
    # When it is read and retried while Stripe is still working on it
    during = gateway.retrieve(pi_id)
    with pytest.raises(UnclearOutcome) as in_flight:
        gateway.capture(pi_id, 700, "order:8:capture")
    wait_until(lambda: len(fake.captures_for(pi_id)) == 1)
    after = gateway.retrieve(pi_id)
    retried = gateway.capture(pi_id, 700, "order:8:capture")
    # Then it is unclear twice (timeout, then 409 key in use), and settles as one capture
    assert timed_out.value.reason == "stripe_unreachable"
    assert in_flight.value.reason == "idempotency_key_in_use"
    assert in_flight.value.detail.startswith("HTTP 409; idempotency_key_in_use")
    assert (during.status, after.status, retried.status) == (
        "requires_capture",
        "succeeded",
        "succeeded",
    )
    assert fake.captures_for(pi_id) == [Effect("capture", pi_id, 700, "order:8:capture")]


def test_refund_partial_then_the_rest(fake: StripeFake, gateway: StripeGateway) -> None:
    # Given a captured 1000
    pi_id = fake.create_authorized_intent(1000)
    gateway.capture(pi_id, 1000, "order:9:capture")
    # When 300 is refunded (twice under one key), then the rest
    partial = gateway.refund(pi_id, 300, "order:9:refund:1")
    replayed = gateway.refund(pi_id, 300, "order:9:refund:1")
    rest = gateway.refund(pi_id, None, "order:9:refund:2")
    state = gateway.retrieve(pi_id)
    # Then two refunds exist, summing to the capture
    assert partial == replayed
    assert (partial.amount, partial.status, partial.id.startswith("re_")) == (
        300,
        "succeeded",
        True,
    )
    assert rest == RefundResult(rest.id, 700, "succeeded")
    assert (state.status, state.amount_received, state.amount_refunded) == ("succeeded", 1000, 1000)
    assert [(e.kind, e.amount, e.idempotency_key) for e in fake.effects if e.kind == "refund"] == [
        ("refund", 300, "order:9:refund:1"),
        ("refund", 700, "order:9:refund:2"),
    ]


def test_refund_of_an_uncaptured_hold_is_refused(fake: StripeFake, gateway: StripeGateway) -> None:
    # Given a hold not captured
    pi_id = fake.create_authorized_intent(1000)
    # When it is refunded
    with pytest.raises(PermanentError) as refused:
        gateway.refund(pi_id, None, "order:10:refund")
    # Then Stripe refuses and nothing moved
    assert refused.value.reason == "payment_intent_unexpected_state"
    assert fake.effect_counts() == {"create": 1}


def test_cancel_releases_the_hold_once(fake: StripeFake, gateway: StripeGateway) -> None:
    # Given a hold of 450
    pi_id = fake.create_authorized_intent(450)
    # When it is cancelled, twice under one key
    first = gateway.cancel(pi_id, "order:11:cancel")
    second = gateway.cancel(pi_id, "order:11:cancel")
    # Then it is released once
    assert first == second
    assert (first.status, first.amount_capturable, first.amount_received) == ("canceled", 0, 0)
    assert [(e.kind, e.amount, e.idempotency_key) for e in fake.effects] == [
        ("create", 450, None),
        ("cancel", 450, "order:11:cancel"),
    ]


def test_a_wrong_key_is_permanent_and_never_shown(fake: StripeFake) -> None:
    # Given a gateway with a key Stripe does not know
    pi_id = fake.create_authorized_intent(100)
    wrong = "sk_test_wrong_key_987654"
    gateway = StripeGateway(wrong, fake.base_url)
    # When it captures
    with pytest.raises(PermanentError) as refused:
        gateway.capture(pi_id, 100, "order:12:capture")
    # Then 401 is permanent, the key appears nowhere, and nothing happened
    assert refused.value.reason == "stripe_authentication_failed"
    assert wrong not in f"{refused.value!s} {refused.value!r} {refused.value.detail} {gateway!r}"
    assert (refused.value.__cause__, refused.value.__context__) == (None, None)
    assert fake.captures_for(pi_id) == []


def test_from_settings_uses_the_configured_key_and_base(fake: StripeFake) -> None:
    # Given settings pointing at the fake, and settings without a key
    configured = Settings(
        _env_file=None, stripe_api_key=SecretStr(API_KEY), stripe_api_base=fake.base_url
    )
    unconfigured = Settings(_env_file=None, stripe_api_key=SecretStr(""))
    pi_id = fake.create_authorized_intent(250)
    # When gateways are made from them
    state = StripeGateway.from_settings(configured).retrieve(pi_id)
    with pytest.raises(RetryableError) as waiting:
        StripeGateway.from_settings(unconfigured)
    # Then the first reaches the fake, the second asks to wait for configuration
    assert state.status == "requires_capture"
    assert waiting.value.reason == "stripe_unconfigured"
    assert fake.requests == {("GET", "/v1/payment_intents/{id}"): 1}


def test_calls_without_our_key_or_with_a_bad_amount_are_programming_errors(
    fake: StripeFake, gateway: StripeGateway
) -> None:
    # Given a hold
    pi_id = fake.create_authorized_intent(100)
    # When called without a key, with a too-long key, or with a non-positive amount
    with pytest.raises(ValueError, match="idempotency key"):
        gateway.capture(pi_id, 100, "")
    with pytest.raises(ValueError, match="idempotency key"):
        gateway.cancel(pi_id, "k" * 256)
    with pytest.raises(ValueError, match="positive integer"):
        gateway.refund(pi_id, 0, "order:13:refund")
    # Then nothing reached Stripe
    assert fake.requests == {}


def test_an_idle_connection_the_server_closed_is_replaced_before_use(fake: StripeFake) -> None:
    # Given a gateway that has talked to Stripe over a kept-alive connection
    pi_id = fake.create_authorized_intent(700)
    gateway = StripeGateway(API_KEY, fake.base_url, timeout_s=IMPATIENT_S)
    assert gateway.retrieve(pi_id).status == "requires_capture"
    # When the server closes every idle connection (and the close has reached the client)
    fake.close_connections()
    time.sleep(0.2)
    # Then the next call connects afresh and succeeds, without an unclear outcome
    state = gateway.capture(pi_id, 700, "closed-idle-1")
    assert (state.status, state.amount_received) == ("succeeded", 700)
    assert fake.effect_counts().get("capture") == 1
