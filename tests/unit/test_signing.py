"""Envelope signatures: canonical body, sign/verify, key rotation, and the signature policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.messages import schema, signing
from tasks.messages.catalogue import ReasonCode, RejectedMessage, decode
from tasks.messages.signing import (
    VerifyOutcome,
    VerifyResult,
    authenticate,
    canonical_body,
    sign,
    verify,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
OLD = ("k2025", b"old-secret-0123456789abcdef")
NEW = ("k2026", b"new-secret-fedcba9876543210")
LIMIT = 64 * 1024

# The worked example of docs/messages.md, written out here so a producer in another language
# can check its implementation against fixed bytes.
WORKED_ENVELOPE = {
    "version": 1,
    "type": "order.shipped",
    "id": "0b6f2b9e-3c1d-4c8e-9f5a-2d7e8a1b4c60",
    "occurred_at": "2026-03-04T14:05:00+01:00",
    "producer": "warehouse",
    "data": {
        "number": "M9681118",
        "tracking_numbers": ["00340434161234567890"],
        "carrier": "DHL",
        "note": "Beim Nachbarn abgegeben \u2013 Müller, Nr. 12",
        "notify_customer": True,
    },
}
WORKED_KEY_ID = "example-2026"
WORKED_SECRET = b"not-a-real-secret-use-32-random-bytes"
WORKED_BODY = (
    '{"data":{"carrier":"DHL","note":"Beim Nachbarn abgegeben \u2013 Müller, Nr. 12",'
    '"notify_customer":true,"number":"M9681118","tracking_numbers":["00340434161234567890"]},'
    '"id":"0b6f2b9e-3c1d-4c8e-9f5a-2d7e8a1b4c60","occurred_at":"2026-03-04T14:05:00+01:00",'
    '"producer":"warehouse","type":"order.shipped","version":1}'
)
WORKED_HEX = "b6ebaf97860a14f4898448e133cfac1bd379d9715e798b2d2bfd32df4135c30e"


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name / "v1.json").read_text("utf-8"))
    return loaded


def _decoded(envelope: dict[str, Any]) -> Any:
    return decode(json.dumps(envelope, ensure_ascii=False).encode("utf-8"), LIMIT)


# --- the worked example ----------------------------------------------------------------------


def test_worked_example_canonical_body_and_digest() -> None:
    # When the worked example is canonicalised and signed
    body = canonical_body(WORKED_ENVELOPE)
    signed = sign(WORKED_ENVELOPE, WORKED_KEY_ID, WORKED_SECRET)
    # Then the bytes and the digest are exactly the published ones
    assert body == WORKED_BODY.encode("utf-8")
    assert len(body) == 310
    assert signed["signature"] == {
        "key_id": "example-2026",
        "alg": "hmac-sha256",
        "value": WORKED_HEX,
    }


def test_docs_show_the_same_worked_example() -> None:
    # Then the example rendered into docs/messages.md is the one tested here
    assert schema.WORKED_EXAMPLE_ENVELOPE == WORKED_ENVELOPE
    assert schema.WORKED_EXAMPLE_KEY_ID == WORKED_KEY_ID
    assert schema.WORKED_EXAMPLE_SECRET == WORKED_SECRET
    rendered = schema.render_catalogue_markdown()
    assert WORKED_HEX in rendered
    assert WORKED_BODY in rendered


# --- round trips and rotation ----------------------------------------------------------------


def test_sign_then_verify_round_trip() -> None:
    # Given a golden sample signed with the new key
    envelope = _sample("order.cancelled")
    signed = sign(envelope, *NEW)
    # When it is verified with the configured keys
    result = verify(signed, dict([NEW, OLD]))
    # Then it is ok, names the key, and the input was not changed
    assert result == VerifyResult(VerifyOutcome.OK, "k2026")
    assert result.ok is True
    assert "signature" not in envelope
    assert list(signed) == [*envelope, "signature"]
    assert signed["data"] == envelope["data"]
    assert signed["data"] is not envelope["data"]


def test_rotation_old_signatures_verify_while_both_keys_are_configured() -> None:
    # Given a message signed with the old key before rotation
    signed = sign(_sample("payment.recorded"), *OLD)
    # When the new key is added first (it signs) and the old one is still listed
    during = verify(signed, dict([NEW, OLD]))
    # And later the old key is removed
    after = verify(signed, dict([NEW]))
    # Then it verified during the overlap and is an unknown key afterwards
    assert during == VerifyResult(VerifyOutcome.OK, "k2025")
    assert after == VerifyResult(VerifyOutcome.UNKNOWN_KEY, "k2025")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", "number"), "M9681119"),
        (("data", "notify_customer"), False),
        (("id",), "0b6f2b9e-3c1d-4c8e-9f5a-2d7e8a1b4c61"),
        (("type",), "order.refund_requested"),
        (("producer",), "mallory"),
        (("data", "amount"), 1),
    ],
    ids=["number", "flag", "id", "type", "producer", "ignored-field"],
)
def test_any_tampered_field_fails(path: tuple[str, ...], value: Any) -> None:
    # Given a signed message
    signed = sign(WORKED_ENVELOPE, WORKED_KEY_ID, WORKED_SECRET)
    # When one field, even one the consumer ignores, is changed after signing
    target = signed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    # Then the signature no longer verifies
    result = verify(signed, {WORKED_KEY_ID: WORKED_SECRET})
    assert result == VerifyResult(VerifyOutcome.BAD_SIGNATURE, WORKED_KEY_ID)


def test_tampered_signature_value_fails_and_uppercase_hex_is_accepted() -> None:
    # Given a signed message, a copy with one digit changed and a copy in uppercase hex
    signed = sign(WORKED_ENVELOPE, WORKED_KEY_ID, WORKED_SECRET)
    flipped = json.loads(json.dumps(signed))
    flipped["signature"]["value"] = ("0" if WORKED_HEX[0] != "0" else "1") + WORKED_HEX[1:]
    upper = json.loads(json.dumps(signed))
    upper["signature"]["value"] = WORKED_HEX.upper()
    keys = {WORKED_KEY_ID: WORKED_SECRET}
    # Then the changed one fails and the uppercase one verifies
    assert verify(flipped, keys).outcome is VerifyOutcome.BAD_SIGNATURE
    assert verify(upper, keys).outcome is VerifyOutcome.OK


def test_missing_and_null_signatures_are_missing() -> None:
    # Given an unsigned message and one with signature: null
    unsigned = dict(WORKED_ENVELOPE)
    null_signed = {**WORKED_ENVELOPE, "signature": None}
    # Then both are missing
    keys = {WORKED_KEY_ID: WORKED_SECRET}
    assert verify(unsigned, keys) == VerifyResult(VerifyOutcome.MISSING)
    assert verify(null_signed, keys) == VerifyResult(VerifyOutcome.MISSING)


def test_unknown_key_id_and_empty_secret_are_unknown_keys() -> None:
    # Given a message signed with a key the consumer does not have, and a configured empty secret
    signed = sign(WORKED_ENVELOPE, "k-elsewhere", b"some-secret")
    # Then both are unknown keys
    assert verify(signed, dict([OLD])) == VerifyResult(VerifyOutcome.UNKNOWN_KEY, "k-elsewhere")
    assert verify(signed, {"k-elsewhere": b""}).outcome is VerifyOutcome.UNKNOWN_KEY


@pytest.mark.parametrize(
    "signature",
    [
        "deadbeef",
        [],
        {"key_id": 7, "alg": "hmac-sha256", "value": WORKED_HEX},
        {"key_id": WORKED_KEY_ID, "alg": "hmac-sha1", "value": WORKED_HEX},
        {"key_id": WORKED_KEY_ID, "alg": "hmac-sha256", "value": "zz" * 32},
        {"key_id": WORKED_KEY_ID, "alg": "hmac-sha256", "value": "é" * 64},
        {"key_id": WORKED_KEY_ID, "alg": "hmac-sha256"},
    ],
    ids=["string", "list", "int-key", "alg", "not-hex", "non-ascii", "no-value"],
)
def test_malformed_signatures_are_bad_never_an_exception(signature: Any) -> None:
    # Given an envelope with a malformed signature member
    envelope = {**WORKED_ENVELOPE, "signature": signature}
    # When it is verified
    result = verify(envelope, {WORKED_KEY_ID: WORKED_SECRET})
    # Then it is simply a bad signature
    assert result.outcome is VerifyOutcome.BAD_SIGNATURE


def test_unsignable_bodies_are_bad_signatures_on_verify_and_errors_on_sign() -> None:
    # Given an envelope holding a float
    envelope = {**WORKED_ENVELOPE, "data": {"amount": 1.5}}
    signature = {"key_id": WORKED_KEY_ID, "alg": "hmac-sha256", "value": WORKED_HEX}
    # Then verifying reports a bad signature and signing refuses
    result = verify({**envelope, "signature": signature}, {WORKED_KEY_ID: WORKED_SECRET})
    assert result.outcome is VerifyOutcome.BAD_SIGNATURE
    with pytest.raises(ValueError, match="floats are not allowed"):
        sign(envelope, WORKED_KEY_ID, WORKED_SECRET)
    with pytest.raises(ValueError, match="integers must be within"):
        sign({**WORKED_ENVELOPE, "version": 2**53}, WORKED_KEY_ID, WORKED_SECRET)
    with pytest.raises(ValueError, match="key_id must be"):
        sign(WORKED_ENVELOPE, "has space", WORKED_SECRET)
    with pytest.raises(ValueError, match="must not be empty"):
        sign(WORKED_ENVELOPE, WORKED_KEY_ID, b"")


# --- canonical form --------------------------------------------------------------------------


def test_canonical_form_ignores_member_order_and_whitespace() -> None:
    # Given the same signed envelope on the wire three ways: compact, indented, keys reversed
    signed = sign(WORKED_ENVELOPE, WORKED_KEY_ID, WORKED_SECRET)
    reversed_keys = json.loads(json.dumps(signed), object_pairs_hook=lambda p: dict(p[::-1]))
    wires = [
        json.dumps(signed, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        json.dumps(signed, indent=4).encode("utf-8"),
        json.dumps(reversed_keys, indent="\t", ensure_ascii=False).encode("utf-8"),
    ]
    # When each is decoded and verified over what was received
    keys = {WORKED_KEY_ID: WORKED_SECRET}
    results = [verify(decode(raw, LIMIT).raw, keys) for raw in wires]
    bodies = {canonical_body(decode(raw, LIMIT).raw) for raw in wires}
    # Then all verify and share one canonical body
    assert [result.outcome for result in results] == [VerifyOutcome.OK] * 3
    assert bodies == {WORKED_BODY.encode("utf-8")}


def test_canonical_strings_and_key_order_follow_rfc_8785() -> None:
    # Given keys whose UTF-16 order differs from code point order, and strings needing escapes
    value = {
        "\ufb01": 1,
        "\U0001f600": 2,
        "b": 'tab\tnl\nctl\x01 quote" slash/ back\\ del\x7f é \u2028',
        "a": [True, False, None, -7, 0],
    }
    # When it is canonicalised
    body = canonical_body(value).decode("utf-8")
    # Then keys sort by UTF-16 code units and strings escape only what JSON.stringify escapes
    assert body == (
        '{"a":[true,false,null,-7,0],'
        '"b":"tab\\tnl\\nctl\\u0001 quote\\" slash/ back\\\\ del\x7f é \u2028",'
        '"\U0001f600":2,"\ufb01":1}'
    )


def test_canonical_body_drops_only_the_top_level_signature() -> None:
    # Given a message whose data has its own member named signature
    envelope = {"a": 1, "signature": {"x": 1}, "data": {"signature": "kept"}}
    # Then only the top-level one is left out
    assert canonical_body(envelope) == b'{"a":1,"data":{"signature":"kept"}}'


# --- the policy: authenticate ----------------------------------------------------------------


def test_money_moving_types_must_be_signed() -> None:
    # Given an unsigned order.refund_requested and an unsigned order.archived
    refund = _decoded(_sample("order.refund_requested"))
    archive = _decoded(_sample("order.archived"))
    keys = dict([NEW, OLD])
    # When the policy is applied
    with pytest.raises(RejectedMessage) as caught:
        authenticate(refund, keys)
    allowed = authenticate(archive, keys)
    # Then the money-moving one is refused and the other passes as unsigned
    assert caught.value.reason_code is ReasonCode.SIGNATURE_MISSING
    assert caught.value.detail == "order.refund_requested must be signed"
    assert allowed == VerifyResult(VerifyOutcome.MISSING)


def test_signed_messages_pass_the_policy_whatever_their_type() -> None:
    # Given every golden sample signed with the old key
    keys = dict([NEW, OLD])
    results = []
    for path in sorted(SAMPLES.glob("*/v1.json")):
        signed = sign(_sample(path.parent.name), *OLD)
        # When each is decoded and authenticated
        results.append(authenticate(_decoded(signed), keys))
    # Then all 18 verify with the old key
    assert results == [VerifyResult(VerifyOutcome.OK, "k2025")] * 18


def test_a_present_signature_must_verify_even_when_optional() -> None:
    # Given an order.archived (signature optional) with a wrong and an unknown-key signature
    wrong = sign(_sample("order.archived"), NEW[0], b"not-the-configured-secret")
    unknown = sign(_sample("order.archived"), "k1999", b"whatever")
    keys = dict([NEW, OLD])
    # When the policy is applied
    with pytest.raises(RejectedMessage) as wrong_caught:
        authenticate(_decoded(wrong), keys)
    with pytest.raises(RejectedMessage) as unknown_caught:
        authenticate(_decoded(unknown), keys)
    # Then both are refused with their own reason; no secret appears in the details
    assert wrong_caught.value.reason_code is ReasonCode.SIGNATURE_INVALID
    assert wrong_caught.value.detail == "the signature does not match the canonical body"
    assert unknown_caught.value.reason_code is ReasonCode.SIGNATURE_UNKNOWN_KEY
    assert unknown_caught.value.detail == "signing key k1999 is not configured here"
    for caught in (wrong_caught, unknown_caught):
        assert "secret" not in str(caught.value)


def test_policy_can_require_signatures_on_more_types() -> None:
    # Given an unsigned manufacturer.upserted and a policy that requires it signed
    message = _decoded(_sample("manufacturer.upserted"))
    # When the stricter policy is applied
    with pytest.raises(RejectedMessage) as caught:
        authenticate(message, dict([NEW]), required_types={"manufacturer.upserted"})
    # Then it is refused as unsigned
    assert caught.value.reason_code is ReasonCode.SIGNATURE_MISSING


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_the_fast_canonical_form_equals_the_rfc_8785_walk(value: object) -> None:
    # The fast path must give the very bytes the reference walk gives (or take no shortcut).
    body = {"data": value, "id": "x"}
    try:
        reference = signing._canonical(body, 0).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return
    assert signing.canonical_body(body) == reference
