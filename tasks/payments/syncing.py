"""Bring orders in line with a PaymentIntent as Stripe reports it (after a webhook event, or
when the hold's expiry is learned): a capture, a release or a refund made elsewhere is
recorded once, under the same keys our own calls use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from models.db.commerce import Order, Payment
from models.db.uow import UnitOfWork, UowFactory
from models.domain.ledger import HoldState
from models.domain.payments import IntentVerdict, capture_verdict
from tasks.payments import running
from tasks.payments.recording import book_refund, ensure_captured, release_hold
from tasks.payments.requesting import expire_hold


@dataclass(frozen=True)
class IntentFacts:
    """What Stripe says about a PaymentIntent (read by the worker, never taken from a webhook)."""

    intent_id: str
    status: str
    amount_received: int
    amount_refunded: int
    capture_before: datetime | None
    cancellation_reason: str | None
    reference: str


def reconcile_intent(uow: UnitOfWork, facts: IntentFacts) -> str:
    """Apply the intent's real state to its orders; a summary of what changed."""
    members = list(
        uow.session.scalars(
            select(Order)
            .where(Order.stripe_payment_intent_id == facts.intent_id)
            .order_by(Order.id)
            .with_for_update()
        )
    )
    if not members:
        return "no order has this PaymentIntent"
    root = members[0]
    for member in members:
        # Stripe's word replaces the storefront's (order.placed); a reply without one keeps it.
        member.capture_before = facts.capture_before or member.capture_before
    verdict = capture_verdict(facts.status)
    held = HoldState(root.hold_state) is HoldState.HELD
    if verdict is IntentVerdict.CAPTURED and held:
        ensure_captured(uow, root, amount=facts.amount_received, reference=facts.reference)
        return "capture recorded"
    if verdict is IntentVerdict.RELEASED and held:
        if facts.cancellation_reason == "automatic":
            expire_hold(uow, members, "Stripe reports the hold lapsed")
            return "hold lapsed"
        release_hold(uow, members)
        return "hold released"
    return _sync_refunds(uow, members, facts)


def _sync_refunds(uow: UnitOfWork, members: list[Order], facts: IntentFacts) -> str:
    """Record refunds made outside orderflow (e.g. in Stripe's dashboard), shared out over the
    family root first, each member taking at most the Stripe money it still holds (I11)."""
    held = _stripe_money(uow, members)
    recorded = sum(received - left for received, left in held.values())
    # Releasing an uncaptured hold marks its charge "refunded" too: only money that was
    # received can have been refunded.
    missing = min(facts.amount_refunded, facts.amount_received) - recorded
    if missing <= 0:
        return "in line with Stripe"
    left_to_share = missing
    for member in members:
        part = min(left_to_share, held.get(member.id, (0, 0))[1])
        if part > 0:
            book_refund(
                uow,
                member,
                part,
                f"{facts.reference}:refunded-at-stripe",
                cause=f"refund-sync:{facts.amount_refunded}",
                summary=f"refund of {part} {member.currency} made at Stripe recorded",
            )
            left_to_share -= part
    # Whatever no member still holds stays unrecorded (and is looked at again next time).
    return f"refund of {missing - left_to_share} recorded"


def _stripe_money(uow: UnitOfWork, members: list[Order]) -> dict[int, tuple[int, int]]:
    """Per member: (received from Stripe, still held net of Stripe refunds)."""
    query = (
        select(
            Payment.order_id,
            func.coalesce(func.sum(case((Payment.amount > 0, Payment.amount), else_=0)), 0),
            func.coalesce(func.sum(Payment.amount), 0),
        )
        .where(Payment.order_id.in_([m.id for m in members]), Payment.source == "stripe")
        .group_by(Payment.order_id)
    )
    return {int(i): (int(received), int(net)) for i, received, net in uow.session.execute(query)}


def reconcile(new_uow: UowFactory, gateway: running.Gateway, payload: dict[str, Any]) -> None:
    """Read the PaymentIntent and bring its orders in line with it."""
    state = gateway().retrieve(str(payload["intent_id"]))
    facts = IntentFacts(
        intent_id=state.id,
        status=state.status,
        amount_received=state.amount_received,
        amount_refunded=state.amount_refunded,
        capture_before=state.capture_before,
        cancellation_reason=state.cancellation_reason,
        reference=state.latest_charge or state.id,
    )
    running.settle(new_uow, lambda uow: reconcile_intent(uow, facts))
