"""HMAC-SHA256 envelope signatures with named keys (the first signs, all verify).

The signed bytes are the canonical body: RFC 8785 (JCS) of the envelope without `signature`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tasks.messages.catalogue import (
    MAX_NESTING,
    MAX_SAFE_INTEGER,
    MONEY_MOVING_TYPES,
    DecodedMessage,
    ReasonCode,
    RejectedMessage,
)
from tasks.messages.envelope import SIGNATURE_ALG

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

CANONICAL_FORM = """\
1. Take the envelope as a JSON object and remove its top-level `signature` member (whatever its
   value, `null` included). Everything else is signed: `id`, `type`, `version`, `occurred_at`,
   `producer`, `correlation_id` if present, and all of `data`, including fields the consumer
   ignores.
2. Serialise it as RFC 8785 (JSON Canonicalization Scheme): no whitespace; object members
   sorted by key, comparing keys as UTF-16 code units (plain ASCII order for our keys); strings
   as JSON.stringify writes them (only `"`, `\\` and U+0000-U+001F escaped: `\\b \\t \\n \\f \\r`
   short, the rest as `\\u00xx` in lowercase hex; every other character, non-ASCII included,
   written as itself); `true`, `false`, `null`; integers in plain decimal.
3. Floats are not allowed anywhere in a message, and integers stay within +/-(2^53-1), so
   number formatting (the one hard part of canonical JSON) never arises.
4. Encode as UTF-8 and compute HMAC-SHA256 with the key's secret bytes (the text after the
   first `:` in `ORDERFLOW_SIGNING_KEYS`, as UTF-8). Send the 64 lowercase hex digits as
   `"signature": {"key_id": "<key id>", "alg": "hmac-sha256", "value": "<hex>"}`.
"""


class VerifyOutcome(StrEnum):
    """What checking an envelope's signature found."""

    OK = "ok"
    MISSING = "missing"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome and, when the signature names one, the key id."""

    outcome: VerifyOutcome
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        """True only for a signature that verified."""
        return self.outcome is VerifyOutcome.OK


def canonical_body(envelope: Mapping[str, Any], *, plain: bool = False) -> bytes:
    """The bytes a signature covers; ValueError for floats, unsafe integers or other types.

    `plain` says the caller already knows the envelope is JSON of ASCII keys and safe integers
    without floats (`decode` finds out while it checks the structure), so the walk is skipped.
    """
    body = {key: value for key, value in envelope.items() if key != "signature"}
    if plain or _json_is_canonical(body, 0):
        # For ASCII keys, safe integers and no floats, the C encoder writes RFC 8785 exactly
        # (same escapes, same key order) about six times faster than the walk below.
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return _canonical(body, 0).encode("utf-8")


def _json_is_canonical(value: Any, depth: int) -> bool:
    """Whether json.dumps(sort_keys=True) gives RFC 8785 bytes for this value."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if depth > MAX_NESTING:
        return False
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and key.isascii() and _json_is_canonical(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return all(_json_is_canonical(item, depth + 1) for item in value)
    return False


def _canonical(value: Any, depth: int) -> str:
    if depth > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integers must be within +/-{MAX_SAFE_INTEGER}")
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object keys must be strings")
        # RFC 8785 orders keys by UTF-16 code units; big-endian UTF-16 bytes sort the same way.
        keys = sorted(value, key=lambda key: key.encode("utf-16-be", "surrogatepass"))
        members = (f"{_canonical(key, depth)}:{_canonical(value[key], depth + 1)}" for key in keys)
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(item, depth + 1) for item in value) + "]"
    if isinstance(value, float):
        raise ValueError("floats are not allowed in messages (money is integer minor units)")
    raise ValueError(f"cannot sign a {type(value).__name__}")


def _digest(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign(envelope: Mapping[str, Any], key_id: str, secret: bytes) -> dict[str, Any]:
    """A deep copy of the envelope with `signature` set (replacing any); the input is unchanged."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("key_id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    if not secret:
        raise ValueError("the signing secret must not be empty")
    value = _digest(secret, canonical_body(envelope))
    signed = {key: copy.deepcopy(item) for key, item in envelope.items() if key != "signature"}
    signed["signature"] = {"key_id": key_id, "alg": SIGNATURE_ALG, "value": value}
    return signed


def verify(
    envelope: Mapping[str, Any], keys: Mapping[str, bytes], *, plain: bool = False
) -> VerifyResult:
    """Check the envelope's signature against the named keys; never raises on odd input.

    `plain` as for `canonical_body`.
    """
    signature = envelope.get("signature")
    if signature is None:
        return VerifyResult(VerifyOutcome.MISSING)
    if not isinstance(signature, Mapping):
        return VerifyResult(VerifyOutcome.BAD_SIGNATURE)
    key_id = signature.get("key_id")
    if not isinstance(key_id, str):
        return VerifyResult(VerifyOutcome.BAD_SIGNATURE)
    value = signature.get("value")
    if signature.get("alg") != SIGNATURE_ALG or not (
        isinstance(value, str) and _HEX_DIGEST.fullmatch(value)
    ):
        return VerifyResult(VerifyOutcome.BAD_SIGNATURE, key_id)
    secret = keys.get(key_id)
    if not secret:
        # An empty secret would make forging trivial, so it verifies nothing.
        return VerifyResult(VerifyOutcome.UNKNOWN_KEY, key_id)
    try:
        body = canonical_body(envelope, plain=plain)
    except (ValueError, RecursionError):
        return VerifyResult(VerifyOutcome.BAD_SIGNATURE, key_id)
    expected = _digest(secret, body).encode("ascii")
    if hmac.compare_digest(expected, value.lower().encode("ascii")):
        return VerifyResult(VerifyOutcome.OK, key_id)
    return VerifyResult(VerifyOutcome.BAD_SIGNATURE, key_id)


def authenticate(
    message: DecodedMessage,
    keys: Mapping[str, bytes],
    required_types: Set[str] = MONEY_MOVING_TYPES,
) -> VerifyResult:
    """Apply the signature policy to a decoded message, or raise RejectedMessage.

    A present signature must verify, whatever the type; types in `required_types` (by default
    the money-moving ones) must be signed. Returns MISSING for an allowed unsigned message.
    """
    result = verify(message.raw, keys, plain=message.plain)
    type_ = message.envelope.type
    if result.outcome is VerifyOutcome.MISSING and type_ in required_types:
        raise RejectedMessage(ReasonCode.SIGNATURE_MISSING, f"{type_} must be signed")
    if result.outcome is VerifyOutcome.UNKNOWN_KEY:
        raise RejectedMessage(
            ReasonCode.SIGNATURE_UNKNOWN_KEY,
            f"signing key {result.key_id} is not configured here",
        )
    if result.outcome is VerifyOutcome.BAD_SIGNATURE:
        raise RejectedMessage(
            ReasonCode.SIGNATURE_INVALID,
            "the signature does not match the canonical body",
        )
    return result
