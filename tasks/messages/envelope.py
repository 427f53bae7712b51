"""The envelope every inbound message travels in: identity, type/version, time, producer, data.

The `data` object is validated separately against the model registered for (type, version).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

SIGNATURE_ALG = "hmac-sha256"

# Printable text without whitespace or control characters (C0, DEL, C1).
NO_SPACE_PATTERN = r"^[^\s\x00-\x1f\x7f\u0080-\u009f]+$"

KeyId = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
]
HexDigest = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[0-9a-fA-F]{64}$"),
]


class Signature(BaseModel):
    """HMAC-SHA256 of the canonical envelope body, made with the named key (see signing.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: KeyId = Field(description="Name of the signing key, so keys can be rotated.")
    alg: Literal["hmac-sha256"] = Field(description="Always `hmac-sha256`.")
    value: HexDigest = Field(description="The HMAC as 64 hex digits (lowercase preferred).")


class Envelope(BaseModel):
    """One inbound message. Unknown top-level fields are refused (see docs/messages.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: UUID = Field(description="Chosen by the producer; the deduplication key. Not nil.")
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100)] = Field(
        description="Message type, e.g. `order.shipped`."
    )
    version: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(
        description="Version of the type's data schema (an integer, starting at 1)."
    )
    occurred_at: AwareDatetime = Field(
        description="When it happened at the producer: ISO-8601 with an offset (naive refused)."
    )
    producer: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=100, pattern=NO_SPACE_PATTERN)
    ] = Field(description="Name of the sending system, e.g. `storefront`.")
    correlation_id: (
        Annotated[
            str,
            StringConstraints(strict=True, min_length=1, max_length=200, pattern=NO_SPACE_PATTERN),
        ]
        | None
    ) = Field(default=None, description="Optional id tying related messages together (tracing).")
    data: dict[str, Any] = Field(description="The type's payload; validated by its own model.")
    signature: Signature | None = Field(
        default=None,
        description="Required for money-moving types; optional (but checked if present) otherwise.",
    )

    @field_validator("id")
    @classmethod
    def _refuse_nil_id(cls, value: UUID) -> UUID:
        if value.int == 0:
            raise ValueError("the nil UUID is not a valid message id")
        return value
