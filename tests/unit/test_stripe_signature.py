"""The Stripe-Signature check: HMAC over `t.` + body, any v1 may match, bounded in both time
directions, and refusals that never repeat the secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from workers.http.stripe_signature import SignatureError, signature_header, verify_signature

SECRET = "whsec_unit_test_secret"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = 1_772_442_900


def digest(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def refusal(header: str | None, body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(SignatureError) as refused:
        verify_signature(header, body, SECRET, now=now, tolerance_s=300, future_tolerance_s=60)
    assert SECRET not in str(refused.value)
    return refused.value.reason


def test_a_valid_signature_returns_its_timestamp() -> None:
    # Given the header Stripe sends, written out by hand
    header = f"t={NOW},v1={digest(BODY, SECRET, NOW)}"
    # When it is checked one second later
    timestamp = verify_signature(header, BODY, SECRET, now=NOW + 1)
    # Then it verifies, and our helper writes the same header
    assert timestamp == NOW
    assert signature_header(BODY, SECRET, NOW) == header


def test_a_signature_made_with_another_secret_is_refused() -> None:
    header = f"t={NOW},v1={digest(BODY, 'whsec_other', NOW)}"
    assert refusal(header) == "signature does not match"


def test_any_of_two_v1_signatures_may_match() -> None:
    # Given a header during a secret roll: one old, one current signature (and a v0 to ignore)
    old = digest(BODY, "whsec_old", NOW)
    header = f"t={NOW},v1={old},v1={digest(BODY, SECRET, NOW).upper()},v0={'0' * 64}"
    # When checked, then the current one is enough
    assert verify_signature(header, BODY, SECRET, now=NOW) == NOW
    assert refusal(f"t={NOW},v1={old},v1=nothex") == "signature does not match"


def test_stale_timestamps_are_refused_past_the_tolerance() -> None:
    # Given a signature made 300 s and 301 s ago
    at_limit = signature_header(BODY, SECRET, NOW - 300)
    stale = signature_header(BODY, SECRET, NOW - 301)
    # Then the first is still accepted, the second is not
    assert verify_signature(at_limit, BODY, SECRET, now=NOW, tolerance_s=300) == NOW - 300
    assert refusal(stale) == "timestamp too old"


def test_future_timestamps_are_refused_past_the_future_tolerance() -> None:
    # Given signatures dated 60 s and 61 s ahead of our clock
    at_limit = signature_header(BODY, SECRET, NOW + 60)
    future = signature_header(BODY, SECRET, NOW + 61)
    # Then only the first is accepted (the stripe library would accept both)
    assert verify_signature(at_limit, BODY, SECRET, now=NOW, future_tolerance_s=60) == NOW + 60
    assert refusal(future) == "timestamp too far in the future"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    assert refusal(header) == "missing Stripe-Signature header"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={'a' * 64}",  # no timestamp
        f"t=abc,v1={'a' * 64}",  # timestamp not a number
        f"t=-5,v1={'a' * 64}",
        f"t={NOW},t={NOW},v1={'a' * 64}",  # two timestamps
        f"t={NOW},,v1={'a' * 64}",  # an empty part
        f"t=\uff11\uff12\uff13,v1={'a' * 64}",  # fullwidth (non-ASCII) digits
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    assert refusal(header) == "malformed Stripe-Signature header"


def test_a_header_without_v1_is_refused() -> None:
    only_v0 = f"t={NOW},v0={digest(BODY, SECRET, NOW)}"
    assert refusal(only_v0) == "no v1 signature in Stripe-Signature"


def test_a_tampered_body_is_refused() -> None:
    # Given a valid header for the original body
    header = signature_header(BODY, SECRET, NOW)
    # When the body was changed by one byte, or the timestamp by one second
    tampered = BODY.replace(b"evt_1", b"evt_2")
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")
    # Then both are refused
    assert refusal(header, tampered) == "signature does not match"
    assert refusal(moved) == "signature does not match"


def test_an_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        verify_signature(signature_header(BODY, "", NOW), BODY, "", now=NOW)
