"""Paid-backlog eligibility and delivery-note rules, without a database."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.domain.backlog import (
    BulkOutcome,
    EligibilityFacts,
    Unmet,
    check_lines_may_follow,
    outcome_for,
    reasons_text,
    unmet_conditions,
)
from models.domain.delivery import BacklogPiece, Take, billed, plan_delivery
from models.domain.errors import PermanentError
from models.domain.statuses import BacklogKind

ELIGIBLE = EligibilityFacts(
    payment_method="stripe_card", payment_status="paid", paid=25_800, total=25_800,
    confirmation_status="confirmed", fulfillment_status="backordered", archived=False,
    has_paid_backlog=False, has_delivery_note=False,
)  # fmt: skip
PAID, REGULAR = BacklogKind.PAID, BacklogKind.REGULAR


def test_an_order_meeting_every_condition_is_eligible() -> None:
    assert unmet_conditions(ELIGIBLE) == ()
    assert outcome_for((), dry_run=False) is BulkOutcome.CREATED
    assert outcome_for((), dry_run=True) is BulkOutcome.WOULD_CREATE


@pytest.mark.parametrize(
    ("change", "unmet"),
    [
        ({"payment_method": "on_account"}, Unmet.NOT_CARD),
        ({"payment_method": "offline"}, Unmet.NOT_CARD),
        ({"payment_status": "authorized"}, Unmet.NOT_PAID),
        ({"payment_status": "partially_paid"}, Unmet.NOT_PAID),
        ({"payment_status": "overpaid"}, Unmet.NOT_PAID),
        ({"paid": 25_799}, Unmet.NOT_PAID),  # paid for a partial invoice, not the whole order
        ({"confirmation_status": "accepted"}, Unmet.NOT_CONFIRMED),
        ({"confirmation_status": "new"}, Unmet.NOT_CONFIRMED),
        ({"fulfillment_status": "cancelled"}, Unmet.CANCELLED),
        ({"fulfillment_status": "shipped"}, Unmet.SHIPPED),  # the goods left: none undelivered
        ({"fulfillment_status": "fulfilled"}, Unmet.SHIPPED),
        ({"archived": True}, Unmet.ARCHIVED),
        ({"has_paid_backlog": True}, Unmet.PAID_BACKLOG_EXISTS),
        ({"has_delivery_note": True}, Unmet.DELIVERY_NOTE_EXISTS),
    ],
)
def test_each_condition_alone_is_named(change: dict[str, object], unmet: Unmet) -> None:
    # Given an eligible order that misses one condition
    facts = replace(ELIGIBLE, **change)  # type: ignore[arg-type]
    # Then exactly that condition is named
    assert unmet_conditions(facts) == (unmet,)


@pytest.mark.parametrize("status", ["refunded", "partially_refunded"])
def test_a_refund_names_both_the_refund_and_the_missing_payment(status: str) -> None:
    facts = replace(ELIGIBLE, payment_status=status)
    assert unmet_conditions(facts) == (Unmet.NOT_PAID, Unmet.REFUNDED)


def test_every_unmet_condition_is_named_in_a_fixed_order() -> None:
    # Given an order failing everything at once
    facts = EligibilityFacts(
        payment_method="offline", payment_status="refunded", paid=0, total=100,
        confirmation_status="new", fulfillment_status="cancelled", archived=True,
        has_paid_backlog=True, has_delivery_note=True,
    )  # fmt: skip
    # Then all are named, in report order (but `shipped`: an order is shipped or cancelled)
    unmet = unmet_conditions(facts)
    assert unmet == tuple(u for u in Unmet if u is not Unmet.SHIPPED)
    assert reasons_text(unmet) == (
        "not_card,not_paid,not_confirmed,cancelled,refunded,archived,paid_backlog_exists,"
        "delivery_note_exists"
    )
    assert outcome_for(unmet, dry_run=False) is BulkOutcome.ALREADY_CREATED


def test_combinations_without_paid_backlog_are_skipped() -> None:
    facts = replace(ELIGIBLE, payment_method="on_account", archived=True, has_delivery_note=True)
    unmet = unmet_conditions(facts)
    assert unmet == (Unmet.NOT_CARD, Unmet.ARCHIVED, Unmet.DELIVERY_NOTE_EXISTS)
    assert outcome_for(unmet, dry_run=False) is BulkOutcome.SKIPPED
    assert outcome_for(unmet, dry_run=True) is BulkOutcome.SKIPPED
    assert outcome_for((Unmet.PAID_BACKLOG_EXISTS,), dry_run=True) is BulkOutcome.ALREADY_CREATED


def test_lines_cannot_follow_once_something_was_delivered() -> None:
    check_lines_may_follow(has_delivery_note=False)
    with pytest.raises(PermanentError) as refused:
        check_lines_may_follow(has_delivery_note=True)
    assert refused.value.reason == "lines_delivered"


def test_a_note_takes_paid_backlog_first_and_bills_only_regular() -> None:
    # Given 2 drills in paid backlog and 3 in regular backlog (unit price 1,000)
    pieces = [BacklogPiece(7, "DRILL", REGULAR, 3, 1000), BacklogPiece(9, "DRILL", PAID, 2, 1000)]
    # When a note delivers 4 drills
    takes = plan_delivery({"DRILL": 4}, pieces)
    # Then the 2 paid ones go first, unbilled; 2 regular ones are billed
    assert takes == [
        Take(9, "DRILL", PAID, 2, billable=False, amount=0),
        Take(7, "DRILL", REGULAR, 2, billable=True, amount=2000),
    ]
    assert billed(takes) == 2000


def test_a_note_beyond_the_backlog_is_refused_naming_every_short_sku() -> None:
    pieces = [BacklogPiece(1, "DRILL", PAID, 2, 1000), BacklogPiece(2, "BITS", REGULAR, 0, 300)]
    with pytest.raises(PermanentError) as refused:
        plan_delivery({"DRILL": 3, "BITS": 1, "SAW": 1}, pieces)
    assert refused.value.reason == "exceeds_backlog"
    assert refused.value.detail == (
        "DRILL: 3 asked, 2 in backlog; BITS: 1 asked, 0 in backlog; SAW: 1 asked, 0 in backlog"
    )


_pieces = st.lists(
    st.builds(
        BacklogPiece,
        id=st.integers(1, 10_000),
        sku=st.sampled_from(["A", "B", "C"]),
        kind=st.sampled_from([PAID, REGULAR]),
        remaining=st.integers(0, 5),
        unit_price=st.integers(0, 5000),
    ),
    max_size=6,
    unique_by=lambda p: p.id,
)


@given(pieces=_pieces, wanted=st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(1, 8)))
def test_a_note_never_takes_more_than_a_piece_holds(
    pieces: list[BacklogPiece], wanted: dict[str, int]
) -> None:
    # When a note is planned for what the pieces can cover (or more)
    short = any(q > sum(p.remaining for p in pieces if p.sku == s) for s, q in wanted.items())
    if short:
        # Then a request beyond the backlog is refused
        with pytest.raises(PermanentError, match="exceeds_backlog"):
            plan_delivery(wanted, pieces)
        return
    takes = plan_delivery(wanted, pieces)
    # Then each SKU gets exactly what was asked, no piece gives more than it holds, paid first
    by_id = {p.id: p for p in pieces}
    assert {s: sum(t.quantity for t in takes if t.sku == s) for s in wanted} == wanted
    assert all(0 < t.quantity <= by_id[t.backlog_id].remaining for t in takes)
    assert len({t.backlog_id for t in takes}) == len(takes)
    regular_value = sum(t.quantity * by_id[t.backlog_id].unit_price for t in takes
                        if t.kind is REGULAR)  # fmt: skip
    assert billed(takes) == regular_value
    for sku in wanted:
        kinds = [t.kind for t in takes if t.sku == sku]
        assert kinds == sorted(kinds, key=lambda k: k is REGULAR)
