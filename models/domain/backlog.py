"""Paid-backlog eligibility (SPEC job 4): every condition an order misses, by name, and what a
request does with it. The dry run and the creation both decide here; models/db/paid_backlog.py
mirrors each condition as an SQL predicate (a test checks that the two agree)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from models.domain.errors import PermanentError
from models.domain.statuses import (
    ConfirmationStatus,
    FulfillmentStatus,
    PaymentMethod,
    PaymentStatus,
)


class Unmet(StrEnum):
    """A condition of paid-backlog creation that an order does not meet, in report order."""

    NOT_CARD = "not_card"  # not paid by Stripe card
    NOT_PAID = "not_paid"  # payment status is not `paid`, or the net paid is below the total
    NOT_CONFIRMED = "not_confirmed"  # confirmation is not `confirmed`
    CANCELLED = "cancelled"  # fulfillment is `cancelled`
    SHIPPED = "shipped"  # fulfillment is `shipped` or `fulfilled`: nothing is undelivered
    REFUNDED = "refunded"  # payment status is `refunded` or `partially_refunded`
    ARCHIVED = "archived"
    PAID_BACKLOG_EXISTS = "paid_backlog_exists"
    DELIVERY_NOTE_EXISTS = "delivery_note_exists"


REFUNDED_STATUSES = (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)


@dataclass(frozen=True)
class EligibilityFacts:
    """What the rule looks at, as stored on the order and around it."""

    payment_method: str
    payment_status: str
    paid: int  # net paid, minor units
    total: int  # the order's total, minor units
    confirmation_status: str
    fulfillment_status: str
    archived: bool
    has_paid_backlog: bool
    has_delivery_note: bool


def unmet_conditions(facts: EligibilityFacts) -> tuple[Unmet, ...]:
    """Every condition the order misses (empty: eligible), in `Unmet` order."""
    # `paid` alone is not enough: with invoices the amount due is the invoiced amount, and an
    # order paid for a partial invoice would otherwise have its unbilled goods marked paid.
    not_paid = facts.payment_status != PaymentStatus.PAID or facts.paid < facts.total
    failed = {
        Unmet.NOT_CARD: facts.payment_method != PaymentMethod.STRIPE_CARD,
        Unmet.NOT_PAID: not_paid,
        Unmet.NOT_CONFIRMED: facts.confirmation_status != ConfirmationStatus.CONFIRMED,
        Unmet.CANCELLED: facts.fulfillment_status == FulfillmentStatus.CANCELLED,
        Unmet.SHIPPED: facts.fulfillment_status
        in (FulfillmentStatus.SHIPPED, FulfillmentStatus.FULFILLED),
        Unmet.REFUNDED: facts.payment_status in REFUNDED_STATUSES,
        Unmet.ARCHIVED: facts.archived,
        Unmet.PAID_BACKLOG_EXISTS: facts.has_paid_backlog,
        Unmet.DELIVERY_NOTE_EXISTS: facts.has_delivery_note,
    }
    return tuple(condition for condition in Unmet if failed[condition])


class BulkOutcome(StrEnum):
    """What a paid-backlog request did with one order."""

    CREATED = "created"
    WOULD_CREATE = "would_create"  # dry run
    ALREADY_CREATED = "already_created"  # it has paid backlog: nothing is created twice
    SKIPPED = "skipped"  # with every unmet condition named
    UNKNOWN_ORDER = "unknown_order"


def outcome_for(unmet: Sequence[Unmet], *, dry_run: bool) -> BulkOutcome:
    """The per-order result for these unmet conditions."""
    if not unmet:
        return BulkOutcome.WOULD_CREATE if dry_run else BulkOutcome.CREATED
    if Unmet.PAID_BACKLOG_EXISTS in unmet:
        return BulkOutcome.ALREADY_CREATED
    return BulkOutcome.SKIPPED


def reasons_text(unmet: Sequence[Unmet]) -> str:
    """How a result stores its reasons: comma-separated condition names."""
    return ",".join(condition.value for condition in unmet)


def check_lines_may_follow(*, has_delivery_note: bool) -> None:
    """Lines may be replaced while the regular backlog can follow them: nothing delivered yet."""
    if has_delivery_note:
        raise PermanentError(
            "lines_delivered", "a delivery note was made from these lines; they cannot change"
        )
