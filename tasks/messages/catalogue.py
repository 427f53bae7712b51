"""The message catalogue, (type, version) -> data model, and `decode`: the one way bytes become a
message. Every refusal is a `RejectedMessage` with a stable reason code and a safe detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from models.domain.errors import PermanentError
from tasks.messages.envelope import Envelope
from tasks.messages.v1 import V1_MODELS, MessageData
from tasks.messages.v1.common import PATTERN_WORDS

_Data = TypeVar("_Data", bound=MessageData)

DEFAULT_MAX_BYTES = 256 * 1024
MAX_NESTING = 32
# Integers beyond this are not exact in JavaScript and other IEEE-double JSON readers (RFC 7493).
MAX_SAFE_INTEGER = 2**53 - 1
MONEY_MOVING_TYPES: frozenset[str] = frozenset(
    {"order.shipped", "order.refund_requested", "order.cancelled", "payment.recorded"}
)


class ReasonCode(StrEnum):
    """Why a message was refused; stable strings stored with quarantined messages."""

    NOT_JSON = "not_json"
    OVERSIZED = "oversized"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_VERSION = "unknown_version"
    SCHEMA_VIOLATION = "schema_violation"
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_UNKNOWN_KEY = "signature_unknown_key"
    SIGNATURE_INVALID = "signature_invalid"


REASON_DESCRIPTIONS: Mapping[ReasonCode, str] = MappingProxyType(
    {
        ReasonCode.NOT_JSON: "Not one UTF-8 I-JSON text (RFC 7493): invalid UTF-8, a syntax "
        "error, a byte order mark, NaN/Infinity, a duplicate key, an unpaired surrogate escape, "
        "a number too long to read, or nesting too deep to parse.",
        ReasonCode.OVERSIZED: "Longer than the consumer's byte limit (checked before parsing).",
        ReasonCode.INVALID_ENVELOPE: "JSON, but not an envelope: not an object, nested deeper "
        f"than {MAX_NESTING} levels, an envelope field missing or ill-typed, an unknown "
        "top-level field, a naive `occurred_at`, a nil `id`, or a malformed `signature` object.",
        ReasonCode.UNKNOWN_TYPE: "No message type of that name exists.",
        ReasonCode.UNKNOWN_VERSION: "The type exists, but not in that version.",
        ReasonCode.SCHEMA_VIOLATION: "`data` breaks its type's model, or holds a float or an "
        "integer beyond +/-(2^53-1) anywhere (money is integer minor units).",
        ReasonCode.SIGNATURE_MISSING: "A money-moving type arrived unsigned.",
        ReasonCode.SIGNATURE_UNKNOWN_KEY: "Signed with a key id that is not configured.",
        ReasonCode.SIGNATURE_INVALID: "The signature does not match the canonical body.",
    }
)


class RejectedMessage(Exception):  # noqa: N818 - the name is the contract the brief fixes
    """A message refused for good: quarantine it with `reason_code` and `detail`.

    `detail` is for people; it never repeats field values, so it cannot leak secrets.
    """

    def __init__(self, reason_code: ReasonCode, detail: str) -> None:
        super().__init__(f"{reason_code.value}: {detail}")
        self.reason_code = reason_code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """A message that passed `decode`: its envelope, its typed data and the JSON as received."""

    envelope: Envelope
    data: MessageData
    # The parsed JSON object exactly as received: signatures are checked over this.
    raw: Mapping[str, Any]
    # `raw` has only ASCII keys, safe integers and no floats (so json.dumps writes RFC 8785).
    plain: bool = False

    def data_as(self, kind: type[_Data]) -> _Data:
        """The data as the type a handler takes. A message routed to the wrong handler is a
        fault of ours, refused as `wrong_handler` (never an assert, which `python -O` drops)."""
        if not isinstance(self.data, kind):
            raise PermanentError("wrong_handler", f"{self.envelope.type} is not {kind.__name__}")
        return self.data

    @property
    def moves_money(self) -> bool:
        """Whether the type moves money, so it must be signed."""
        return self.envelope.type in MONEY_MOVING_TYPES


def _build_catalogue() -> Mapping[tuple[str, int], type[MessageData]]:
    catalogue: dict[tuple[str, int], type[MessageData]] = {}
    for model in V1_MODELS:
        key = (model.TYPE, model.VERSION)
        if key in catalogue:
            raise RuntimeError(f"two models registered for {key}")
        catalogue[key] = model
    return MappingProxyType(catalogue)


CATALOGUE: Mapping[tuple[str, int], type[MessageData]] = _build_catalogue()
KNOWN_TYPES: frozenset[str] = frozenset(type_ for type_, _ in CATALOGUE)


def model_for(type_: str, version: int) -> type[MessageData]:
    """The data model of (type, version), or RejectedMessage(unknown_type/unknown_version)."""
    model = CATALOGUE.get((type_, version))
    if model is not None:
        return model
    if type_ not in KNOWN_TYPES:
        raise RejectedMessage(ReasonCode.UNKNOWN_TYPE, f"unknown message type {_safe_name(type_)}")
    versions = ", ".join(str(v) for t, v in sorted(CATALOGUE) if t == type_)
    raise RejectedMessage(
        ReasonCode.UNKNOWN_VERSION,
        f"{type_} has no version {version} (known: {versions})",
    )


def decode(raw: bytes, max_bytes: int) -> DecodedMessage:
    """Bytes from the wire -> a validated message; raises only RejectedMessage for bad input.

    Checks, in order: size, JSON, envelope, type, version, data. `max_bytes` < 1 is a
    programming error (ValueError).
    """
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    if len(raw) > max_bytes:
        raise RejectedMessage(
            ReasonCode.OVERSIZED, f"message is {len(raw)} bytes; the limit is {max_bytes}"
        )
    parsed = _parse_json(raw)
    if not isinstance(parsed, dict):
        raise RejectedMessage(ReasonCode.INVALID_ENVELOPE, "the message must be a JSON object")
    plain = _scan(parsed, raw)
    envelope = _validate_envelope(raw)
    model = model_for(envelope.type, envelope.version)
    data = _validate_data(model, envelope, numbers_checked=plain)
    return DecodedMessage(envelope=envelope, data=data, raw=parsed, plain=plain)


class _NotIJsonError(ValueError):
    """Valid JSON syntax that I-JSON (RFC 7493) refuses."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Readers disagree on which duplicate wins, so a signature could cover another value.
        raise _NotIJsonError("an object has a duplicate key")
    return result


def _refuse_constant(name: str) -> Any:
    raise _NotIJsonError(f"{name} is not allowed")


def _parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedMessage(ReasonCode.NOT_JSON, f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except _NotIJsonError as exc:
        raise RejectedMessage(ReasonCode.NOT_JSON, str(exc)) from None
    except json.JSONDecodeError as exc:
        detail = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise RejectedMessage(ReasonCode.NOT_JSON, detail) from None
    except (ValueError, RecursionError):
        detail = "a number too long to read, or nesting too deep to parse"
        raise RejectedMessage(ReasonCode.NOT_JSON, detail) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scan(document: dict[str, Any], raw: bytes) -> bool:
    """Refuse unpaired surrogates (not UTF-8 encodable) and nesting deeper than MAX_NESTING;
    return whether the document is plain: ASCII keys, no floats, safe integers only.

    One walk serves three checks (structure here, numbers in `data`, and the signature's fast
    canonical form), as this is the ingress's hottest loop.
    """
    # Valid UTF-8 cannot hold a surrogate: only a backslash-u escape can, and most messages
    # have none, so the regex is skipped for them.
    escapes = b"\\u" in raw
    plain = True
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(document, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_NESTING:
            detail = f"nested deeper than {MAX_NESTING} levels"
            raise RejectedMessage(ReasonCode.INVALID_ENVELOPE, detail)
        if isinstance(container, dict):
            keys = "".join(container)
            if plain and not keys.isascii():
                plain = False
            if escapes and _SURROGATE.search(keys):
                raise RejectedMessage(ReasonCode.NOT_JSON, "a string has an unpaired surrogate")
            items: Any = container.values()
        else:
            items = container
        for item in items:
            if isinstance(item, str):
                if escapes and _SURROGATE.search(item):
                    raise RejectedMessage(ReasonCode.NOT_JSON, "a string has an unpaired surrogate")
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif plain and (
                isinstance(item, float) or (isinstance(item, int) and abs(item) > MAX_SAFE_INTEGER)
            ):
                plain = False
    return plain


def _first_unportable_number(value: Any, path: str) -> str | None:
    """Path of the first float or unsafe integer under value, in document order, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float):
            return f"{where}: floats are not allowed (money is integer minor units)"
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SAFE_INTEGER:
            return f"{where}: integers must be within +/-{MAX_SAFE_INTEGER}"
        if isinstance(item, dict):
            stack.extend((v, _join(where, k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, _join(where, i)) for i, v in reversed(list(enumerate(item))))
    return None


def _validate_envelope(raw: bytes) -> Envelope:
    try:
        # Strict JSON mode: no "1" for 1, no 1.0 for 1, no 0/1 for booleans. The raw bytes
        # are what we parsed (and found free of duplicate keys) above.
        return Envelope.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        detail = describe_errors(exc.errors(include_input=False, include_url=False))
        raise RejectedMessage(ReasonCode.INVALID_ENVELOPE, detail) from None


def _validate_data(
    model: type[MessageData], envelope: Envelope, *, numbers_checked: bool
) -> MessageData:
    problem = None if numbers_checked else _first_unportable_number(envelope.data, "data")
    if problem is not None:
        raise RejectedMessage(ReasonCode.SCHEMA_VIOLATION, problem)
    try:
        return model.model_validate_json(json.dumps(envelope.data), strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        raise RejectedMessage(
            ReasonCode.SCHEMA_VIOLATION, describe_errors(errors, prefix="data")
        ) from None


def describe_errors(errors: list[ErrorDetails], prefix: str = "", limit: int = 5) -> str:
    """Pydantic errors as `path: message; ...` without input values (those may be secrets)."""
    parts = []
    for err in errors[:limit]:
        where = prefix
        for part in err["loc"]:
            where = _join(where, part)
        parts.append(f"{where or '(message)'}: {_message(err)}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)[:2000]


def _message(err: ErrorDetails) -> str:
    # Our regexes are unreadable in a quarantine listing; say the rule in words instead.
    if err["type"] != "string_pattern_mismatch":
        return err["msg"]
    words = PATTERN_WORDS.get(str(err.get("ctx", {}).get("pattern")))
    return f"String does not fit the rule: {words.replace('`', '')}" if words else err["msg"]


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _safe_name(name: str) -> str:
    """A producer-chosen name (type, key) fit for a detail: short, printable, quoted if odd."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    return json.dumps(name[:40] + ("..." if len(name) > 40 else ""))


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    name = _safe_name(part)
    return f"{path}.{name}" if path else name
