"""What the money invariants look at, read once per check: one namespace's orders with their
lines, backlog, delivery notes, ledger, operations and notifications, and the Stripe fake's
effects on their PaymentIntents."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.commerce import (
    BacklogSku,
    DeliveryNote,
    DeliveryNoteLine,
    Invoice,
    Order,
    OrderLine,
    Payment,
)
from models.db.machinery import ExternalOperation, Notification
from tests.fakes.stripe_model import Effect
from tests.fakes.stripe_server import StripeFake

# The column a failed capture is shown in; absent until the fix lands (see I10).
FAILURE_COLUMN = "capture_failure"


@dataclass(frozen=True)
class OrderFacts:
    """One order's stored figures and statuses."""

    id: int
    number: str
    parent_id: int | None
    total: int
    method: str
    intent: str | None
    confirmation: str
    fulfillment: str
    payment_status: str
    hold_state: str
    invoiced: int
    paid: int
    outstanding: int
    download_allowed: bool
    capture_failure: Any  # None also when the column does not exist


@dataclass(frozen=True)
class BacklogRow:
    """One backlog SKU row."""

    order_id: int
    sku: str
    kind: str
    remaining: int


@dataclass(frozen=True)
class PaymentRow:
    """One ledger entry."""

    id: int
    order_id: int
    amount: int
    source: str


@dataclass(frozen=True)
class OperationRow:
    """One external operation (capture, cancel, refund)."""

    id: int
    key: str
    kind: str
    order_id: int
    status: str
    last_error: str | None


@dataclass
class Facts:
    """Everything one check reads, for one namespace (a prefix of order numbers)."""

    orders: dict[int, OrderFacts] = field(default_factory=dict)
    lines: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    backlog: list[BacklogRow] = field(default_factory=list)
    delivered: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    invoices: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    payments: list[PaymentRow] = field(default_factory=list)
    operations: list[OperationRow] = field(default_factory=list)
    notifications: list[tuple[int, str, str]] = field(default_factory=list)  # order, key, tmpl
    effects: list[Effect] = field(default_factory=list)
    has_failure_column: bool = False

    def families(self) -> dict[str, list[OrderFacts]]:
        """Orders by PaymentIntent, oldest first (the capture key's root is the first)."""
        found: dict[str, list[OrderFacts]] = defaultdict(list)
        for order in sorted(self.orders.values(), key=lambda o: o.id):
            if order.intent is not None:
                found[order.intent].append(order)
        return found

    def root_of(self, order: OrderFacts) -> OrderFacts:
        """The order its `parent_id` chain starts from (bounded by the number of orders)."""
        current = order
        for _ in range(len(self.orders) + 1):
            parent = self.orders.get(current.parent_id) if current.parent_id else None
            if parent is None:
                return current
            current = parent
        return current

    def manual_paid(self, order_id: int, below_id: int | None = None) -> int:
        """Net manual payments of an order (only ledger ids below `below_id`, if given)."""
        return sum(p.amount for p in self.payments if p.order_id == order_id
                   and p.source == "manual" and (below_id is None or p.id < below_id))  # fmt: skip

    def last_payment_id(self) -> int:
        """The newest ledger id of the namespace (0 when none)."""
        return max((p.id for p in self.payments), default=0)


def _order(row: Order) -> OrderFacts:
    return OrderFacts(
        id=row.id, number=row.number, parent_id=row.parent_id, total=row.total,
        method=row.payment_method, intent=row.stripe_payment_intent_id,
        confirmation=row.confirmation_status, fulfillment=row.fulfillment_status,
        payment_status=row.payment_status, hold_state=row.hold_state, invoiced=row.invoiced,
        paid=row.paid, outstanding=row.outstanding_balance,
        download_allowed=row.download_allowed,
        capture_failure=getattr(row, FAILURE_COLUMN, None),
    )  # fmt: skip


def load(session: Session, fake: StripeFake, prefix: str) -> Facts:
    """Read the facts of the orders whose number starts with `prefix`."""
    facts = Facts(has_failure_column=hasattr(Order, FAILURE_COLUMN))
    query = select(Order).where(Order.number.startswith(prefix, autoescape=True))
    facts.orders = {o.id: _order(o) for o in session.scalars(query)}
    ids = list(facts.orders)
    if not ids:
        return facts
    for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(ids))):
        skus = facts.lines[line.order_id]
        skus[line.sku] = skus.get(line.sku, 0) + line.quantity
    for b in session.scalars(select(BacklogSku).where(BacklogSku.order_id.in_(ids))):
        facts.backlog.append(BacklogRow(b.order_id, b.sku, b.kind, b.remaining))
    notes = select(DeliveryNote.order_id, DeliveryNoteLine.sku, DeliveryNoteLine.quantity).join(
        DeliveryNote, DeliveryNote.id == DeliveryNoteLine.note_id
    )
    for order_id, sku, quantity in session.execute(notes.where(DeliveryNote.order_id.in_(ids))):
        facts.delivered[(int(order_id), str(sku))] += int(quantity)
    for order_id, amount in session.execute(
        select(Invoice.order_id, Invoice.amount).where(Invoice.order_id.in_(ids))
    ):
        facts.invoices[int(order_id)].append(int(amount))
    _load_ledger_and_machinery(session, facts, ids)
    intents = {o.intent for o in facts.orders.values()} - {None}
    facts.effects = [e for e in fake.effects if e.pi_id in intents]
    return facts


def _load_ledger_and_machinery(session: Session, facts: Facts, ids: list[int]) -> None:
    paid = select(Payment).where(Payment.order_id.in_(ids)).order_by(Payment.id)
    facts.payments = [PaymentRow(p.id, p.order_id, p.amount, p.source)
                      for p in session.scalars(paid)]  # fmt: skip
    ops = select(ExternalOperation).where(ExternalOperation.order_id.in_(ids))
    facts.operations = [
        OperationRow(o.id, o.key, o.kind, o.order_id or 0, o.status, o.last_error)
        for o in session.scalars(ops.order_by(ExternalOperation.id))
    ]
    mails = select(Notification.order_id, Notification.key, Notification.template).where(
        Notification.order_id.in_(ids)
    )
    facts.notifications = [(int(o or 0), str(k), str(t)) for o, k, t in session.execute(mails)]
