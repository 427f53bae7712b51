"""Ledger rules (SPEC 1.4) as properties: balances, payment status, customer balances."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.domain.ledger import (
    HoldState,
    balances_by_currency,
    download_allowed,
    payment_status,
    totals,
)
from models.domain.statuses import PaymentStatus as S

amounts = st.integers(min_value=1, max_value=10**9)
invoices = st.lists(st.integers(min_value=0, max_value=10**9), max_size=5)
payments = st.lists(st.integers(min_value=-(10**9), max_value=10**9).filter(bool), max_size=8)
holds = st.sampled_from(list(HoldState))


def oracle(total: int, invoice: list[int], pays: list[int], hold: HoldState) -> S:
    """The rules as SPEC 1.4 words them, written independently of the implementation."""
    net = sum(pays)
    due = sum(invoice) if invoice else total
    if not any(p > 0 for p in pays):
        # A hold that lapsed is released as surely as one cancelled: voided either way.
        voided = {HoldState.RELEASED: S.VOIDED, HoldState.EXPIRED: S.VOIDED}
        return {HoldState.HELD: S.AUTHORIZED, **voided}.get(hold, S.PENDING)
    if any(p < 0 for p in pays):
        return S.REFUNDED if net <= 0 else S.PARTIALLY_REFUNDED
    return S.PARTIALLY_PAID if net < due else S.PAID if net == due else S.OVERPAID


@given(total=amounts, invoice=invoices, pays=payments, hold=holds)
def test_balance_is_invoiced_minus_paid_and_status_follows_the_rules(
    total: int, invoice: list[int], pays: list[int], hold: HoldState
) -> None:
    ledger = totals(total, invoice, pays)
    assert ledger.outstanding == sum(invoice) - sum(pays)
    assert ledger.paid == sum(pays)
    assert payment_status(ledger, hold) is oracle(total, invoice, pays, hold)


@given(total=amounts, invoice=invoices, pays=payments, hold=holds, data=st.data())
def test_the_order_of_entries_does_not_matter(
    total: int, invoice: list[int], pays: list[int], hold: HoldState, data: st.DataObject
) -> None:
    shuffled_pays = data.draw(st.permutations(pays))
    shuffled_invoices = data.draw(st.permutations(invoice))
    assert totals(total, invoice, pays) == totals(total, shuffled_invoices, shuffled_pays)
    assert payment_status(totals(total, invoice, pays), hold) is payment_status(
        totals(total, shuffled_invoices, shuffled_pays), hold
    )


@pytest.mark.parametrize(
    ("invoice", "pays", "hold", "status", "outstanding"),
    [
        ([], [], HoldState.NONE, S.PENDING, 0),
        ([], [], HoldState.HELD, S.AUTHORIZED, 0),
        ([], [], HoldState.RELEASED, S.VOIDED, 0),
        ([], [10_000], HoldState.CAPTURED, S.PAID, -10_000),  # captured before invoicing
        ([10_000], [4_000], HoldState.NONE, S.PARTIALLY_PAID, 6_000),
        ([6_000, 4_000], [10_000], HoldState.NONE, S.PAID, 0),
        ([10_000], [12_000], HoldState.NONE, S.OVERPAID, -2_000),
        ([10_000], [10_000, -3_000], HoldState.NONE, S.PARTIALLY_REFUNDED, 3_000),
        ([10_000], [10_000, -10_000], HoldState.NONE, S.REFUNDED, 10_000),
        ([8_000], [10_000], HoldState.NONE, S.OVERPAID, -2_000),  # due is invoiced, not total
    ],
)
def test_examples(
    invoice: list[int], pays: list[int], hold: HoldState, status: S, outstanding: int
) -> None:
    ledger = totals(10_000, invoice, pays)
    assert (payment_status(ledger, hold), ledger.outstanding) == (status, outstanding)


def test_downloads_are_allowed_only_once_paid() -> None:
    allowed = {status for status in S if download_allowed(status)}
    assert allowed == {S.PAID, S.OVERPAID}


def test_customer_balances_stay_per_currency() -> None:
    assert balances_by_currency([("EUR", 100), ("USD", 50), ("EUR", -30)]) == {
        "EUR": 70,
        "USD": 50,
    }
