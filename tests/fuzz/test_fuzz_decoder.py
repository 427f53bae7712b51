"""Fuzzing the ingress decoder: any bytes become a message or a refusal with a known reason code,
nothing else, and quickly; inputs built to hurt parsers are refused with the right reason."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.messages.catalogue import (
    CATALOGUE,
    DecodedMessage,
    ReasonCode,
    RejectedMessage,
    decode,
)
from tasks.messages.signing import authenticate
from tests import factories as f
from tests.fuzz.budget import CALL_LIMIT_S, fuzz
from tests.fuzz.strategies import near_valid_bodies

LIMIT = 64 * 1024
SIGNATURE_REASONS = {
    ReasonCode.SIGNATURE_MISSING,
    ReasonCode.SIGNATURE_UNKNOWN_KEY,
    ReasonCode.SIGNATURE_INVALID,
}


def admit(raw: bytes, max_bytes: int = LIMIT) -> DecodedMessage | RejectedMessage:
    """decode then authenticate, as the ingress does; any exception but a refusal escapes."""
    started = time.perf_counter()
    stage = "decode"
    try:
        message = decode(raw, max_bytes)
        stage = "authenticate"
        authenticate(message, f.KEYS)
        outcome: DecodedMessage | RejectedMessage = message
    except RejectedMessage as refused:
        outcome = refused
    assert time.perf_counter() - started < CALL_LIMIT_S
    if isinstance(outcome, RejectedMessage):
        assert outcome.reason_code in set(ReasonCode)
        assert (outcome.reason_code in SIGNATURE_REASONS) == (stage == "authenticate")
        assert outcome.detail
        assert str(outcome) == f"{outcome.reason_code.value}: {outcome.detail}"
    return outcome


@fuzz(examples=1500)
@given(st.binary(max_size=1024), st.integers(min_value=1, max_value=2048))
def test_arbitrary_bytes_decode_or_are_refused_with_a_known_reason(
    raw: bytes, max_bytes: int
) -> None:
    # When arbitrary bytes arrive under an arbitrary size limit
    outcome = admit(raw, max_bytes)
    # Then they are refused (random bytes are never a signed envelope) with a known reason
    assert isinstance(outcome, RejectedMessage)
    if len(raw) > max_bytes:
        assert outcome.reason_code is ReasonCode.OVERSIZED


@fuzz(examples=700)
@given(near_valid_bodies())
def test_near_valid_envelopes_decode_or_are_refused_with_a_known_reason(raw: bytes) -> None:
    # When a golden sample, mutated, re-serialised and maybe damaged, arrives
    outcome = admit(raw)
    # Then it is a message of its registered model, or a refusal with a known reason
    if isinstance(outcome, DecodedMessage):
        key = (outcome.envelope.type, outcome.envelope.version)
        assert type(outcome.data) is CATALOGUE[key]
        assert outcome.raw["id"] == str(outcome.envelope.id)


def _with(fields: dict[str, Any], type_: str = "inventory.set") -> bytes:
    """A sample with `fields` set in its data, signed when it can be (floats cannot)."""
    envelope = f.envelope(type_, signed=False)
    envelope["data"].update(fields)
    try:
        return f.body(f.resign(envelope))
    except ValueError:
        return f.body(envelope)


_GOOD = f.body(f.envelope("inventory.set"))
_DEEP_31 = json.loads("[" * 31 + "]" * 31)
PATHOLOGICAL: dict[str, tuple[bytes, ReasonCode | None]] = {
    # name: (body, the refusal, or None for a message that is accepted)
    "100,000 open brackets": (b"[" * 100_000, ReasonCode.NOT_JSON),
    "an object nested past the size limit": (b'{"a":' * 60_000, ReasonCode.OVERSIZED),
    # The envelope is level 1 and `data` level 2: 31 arrays in it make 33 levels.
    "33 levels deep": (_with({"x": json.loads("[" * 31 + "]" * 31)}), ReasonCode.INVALID_ENVELOPE),
    "32 levels deep": (_with({"x": json.loads("[" * 30 + "]" * 30)}), None),
    "3,800 arrays 31 deep": (_with({"x": [_DEEP_31] * 3_800}), ReasonCode.INVALID_ENVELOPE),
    "a 5,000-digit number": (_GOOD.replace(b":40", b":" + b"1" * 5_000), ReasonCode.NOT_JSON),
    "1e999": (_GOOD.replace(b":40", b":1e999"), ReasonCode.SCHEMA_VIOLATION),
    "2^53": (_with({"quantity": 2**53}), ReasonCode.SCHEMA_VIOLATION),
    "NaN": (_GOOD.replace(b":40", b":NaN"), ReasonCode.NOT_JSON),
    "a byte order mark": (b"\xef\xbb\xbf" + _GOOD, ReasonCode.NOT_JSON),
    "trailing bytes": (_GOOD + b" x", ReasonCode.NOT_JSON),
    "a duplicate key": (_GOOD.replace(b'{"id":', b'{"type":"x","id":', 1), ReasonCode.NOT_JSON),
    "an unpaired surrogate": (_GOOD.replace(b'"DRILL-18V"', b'"\\ud800"'), ReasonCode.NOT_JSON),
    "15,000 unknown data fields": (_with({f"k{i}": i for i in range(15_000)}), None),
    "50,000 strings": (_with({"x": ["a"] * 50_000}), None),
    "1,000 order lines": (
        _with(
            {"lines": [{"sku": f"S{i}", "quantity": 1, "unit_price": 1} for i in range(1_000)]},
            "order.placed",
        ),
        None,
    ),
    "10,000 repeated order numbers": (
        _with({"order_numbers": ["M1"] * 10_000}, "paid_backlog.requested"),
        ReasonCode.SCHEMA_VIOLATION,
    ),
    "an empty body": (b"", ReasonCode.NOT_JSON),
    "a JSON array": (b"[1,2,3]", ReasonCode.INVALID_ENVELOPE),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_inputs_built_to_hurt_a_parser_get_the_right_answer_quickly(name: str) -> None:
    # Given a body built to be slow, deep, huge or ambiguous (all within 256 KiB but one)
    raw, expected = PATHOLOGICAL[name]
    # When it is decoded and authenticated under the default size limit
    outcome = admit(raw, 256 * 1024)
    # Then it gets exactly the expected answer (admit also bounds the time)
    got = outcome.reason_code if isinstance(outcome, RejectedMessage) else None
    assert got is expected
