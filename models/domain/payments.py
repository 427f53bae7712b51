"""Card payment rules without I/O: what a PaymentIntent's real status means for a capture,
how one capture is shared across a split family, and when a hold needs attention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum


class IntentVerdict(StrEnum):
    """What to do after reading a PaymentIntent's real status."""

    CAPTURED = "captured"  # record the capture (it happened, maybe on an earlier try)
    CAPTURE = "capture"  # still capturable: capture (again) with the same key
    RELEASED = "released"  # canceled (by us, Stripe or the hold lapsing): nothing to capture
    WAIT = "wait"  # processing or awaiting the customer: look again later


_VERDICTS = {
    "succeeded": IntentVerdict.CAPTURED,
    "requires_capture": IntentVerdict.CAPTURE,
    "canceled": IntentVerdict.RELEASED,
}


# Refusals that are the card's (the customer can act on them); any other failed capture, such as
# `amount_too_large`, is ours or the desk's to fix, and the customer is not told it failed.
CARD_PROBLEMS = frozenset(
    {
        "card_declined",
        "expired_card",
        "incorrect_cvc",
        "insufficient_funds",
        "processing_error",
        "authentication_required",
        "card_decline_rate_limit_exceeded",
    }
)


# Statuses in which Stripe lets a PaymentIntent be canceled: a hold that still stands, or one a
# declined capture left waiting for a new card.
CANCELABLE = frozenset(
    {
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
    }
)


def capture_verdict(intent_status: str) -> IntentVerdict:
    """The action an intent's status calls for (anything unknown: wait and look again)."""
    return _VERDICTS.get(intent_status, IntentVerdict.WAIT)


def share(captured: int, totals: Sequence[int]) -> list[int]:
    """Split one captured amount across a family's orders by their totals, in order.

    Each order gets its own total while the money lasts; whatever remains (more captured than
    the family's totals) goes to the first order, so the shares always add up.
    """
    shares, left = [], captured
    for total in totals:
        part = min(max(total, 0), max(left, 0))
        shares.append(part)
        left -= part
    if shares:
        shares[0] += left
    return shares


def hold_expired(capture_before: datetime | None, now: datetime) -> bool:
    """Whether a capture can no longer succeed (the hold lapsed)."""
    return capture_before is not None and capture_before <= now


def hold_warning_due(capture_before: datetime | None, now: datetime, warn: timedelta) -> bool:
    """Whether the desk should be warned now: the hold lapses within `warn`, not yet lapsed."""
    return capture_before is not None and now < capture_before <= now + warn
