"""Atheris harness for the signature checks: a first byte below 0x80 fuzzes envelope `verify`/
`sign` with the rest as JSON; from 0x80, `verify_signature` with `Stripe-Signature LF body`.
Anything but an answer (a VerifyResult, a time, a SignatureError) is a crash."""

# From the repository root (docs/fuzzing.md), e.g. for ten minutes:
#     uv run python -m tests.fuzz.atheris_signature -max_total_time=600

from __future__ import annotations

import json
import sys
from typing import Any

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports(include=["tasks.messages", "workers.http.stripe_signature"]):
    from tasks.messages.signing import VerifyOutcome, sign, verify
    from workers.http.stripe_signature import SignatureError, signature_header, verify_signature

# After them: these import more, which must not pre-empt the instrumentation.
from tests import factories as f
from tests.fakes import stripe_events as se
from tests.fuzz.seeds import STRIPE_NOW, libfuzzer_argv


def check_envelope(raw: bytes) -> None:
    """`verify` answers for any JSON; what `sign` accepts verifies until its signature changes."""
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return
    envelope = value if isinstance(value, dict) else {"data": value}
    if verify(envelope, f.KEYS).outcome not in set(VerifyOutcome):
        raise AssertionError("verify answered outside VerifyOutcome")
    try:
        signed = sign(envelope, f.KEY_ID, f.SECRET)
    except ValueError:
        return  # floats, unsafe integers, surrogates or deep nesting: nothing can be signed
    reordered = json.loads(json.dumps(signed, sort_keys=True, indent=1, ensure_ascii=True))
    if not (verify(signed, f.KEYS).ok and verify(reordered, f.KEYS).ok):
        raise AssertionError("a fresh signature did not verify")
    value = signed["signature"]["value"]
    signed["signature"]["value"] = ("1" if value[0] == "0" else "0") + value[1:]
    if verify(signed, f.KEYS).ok:
        raise AssertionError("a changed signature verified")


def check_stripe(raw: bytes) -> None:
    """`verify_signature` returns a time in the tolerance or raises SignatureError."""
    head, _, body = raw.partition(b"\n")
    header = head.decode("utf-8", "replace")
    try:
        at = verify_signature(header, body, se.WEBHOOK_SECRET, now=STRIPE_NOW)
    except SignatureError:
        pass
    else:
        if not -60 <= at - STRIPE_NOW <= 300:
            raise AssertionError(f"accepted a signature made at {at}")
    fresh = signature_header(body, se.WEBHOOK_SECRET, STRIPE_NOW)
    if verify_signature(fresh, body, se.WEBHOOK_SECRET, now=STRIPE_NOW) != STRIPE_NOW:
        raise AssertionError("a fresh Stripe signature did not verify")


def test_one_input(data: bytes) -> None:
    """One input: the first byte picks the check, the rest is its input."""
    if data[:1] < b"\x80":
        check_envelope(data[1:])
    else:
        check_stripe(data[1:])


def main() -> None:
    """Fuzz until libFuzzer's limits; without a corpus directory, from signed seeds."""
    atheris.Setup(libfuzzer_argv(sys.argv, "signature"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
