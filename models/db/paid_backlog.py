"""Paid-backlog statements: the eligibility conditions as SQL predicates (mirrors of
models/domain/backlog.py), and the set-based steps of a bulk chunk: a fixed number of
statements per chunk, whatever its size, and none per order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    exists,
    func,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from models.db.backlog import BACKLOG_COLUMNS, GOODS_GONE, lines_as_backlog
from models.db.commerce import BacklogSku, DeliveryNote, Order, OrderLine
from models.db.sql import dialect_insert
from models.domain.backlog import REFUNDED_STATUSES, EligibilityFacts, Unmet
from models.domain.statuses import (
    BacklogKind,
    ConfirmationStatus,
    FulfillmentStatus,
    PaymentMethod,
    PaymentStatus,
)

PAID, REGULAR = BacklogKind.PAID.value, BacklogKind.REGULAR.value


def has_paid_backlog() -> ColumnElement[bool]:
    """The order (correlated) has paid backlog SKUs."""
    return exists().where(BacklogSku.order_id == Order.id, BacklogSku.kind == PAID)


def has_delivery_note() -> ColumnElement[bool]:
    """The order (correlated) has a delivery note."""
    return exists().where(DeliveryNote.order_id == Order.id)


def unmet_sql() -> dict[Unmet, ColumnElement[bool]]:
    """Each condition of `unmet_conditions` as a predicate on `orders`, true when unmet."""
    return {
        Unmet.NOT_CARD: Order.payment_method != PaymentMethod.STRIPE_CARD.value,
        Unmet.NOT_PAID: or_(
            Order.payment_status != PaymentStatus.PAID.value, Order.paid < Order.total
        ),
        Unmet.NOT_CONFIRMED: Order.confirmation_status != ConfirmationStatus.CONFIRMED.value,
        Unmet.CANCELLED: Order.fulfillment_status == FulfillmentStatus.CANCELLED.value,
        Unmet.SHIPPED: Order.fulfillment_status.in_(sorted(GOODS_GONE)),
        Unmet.REFUNDED: Order.payment_status.in_([s.value for s in REFUNDED_STATUSES]),
        Unmet.ARCHIVED: Order.archived.is_(True),
        Unmet.PAID_BACKLOG_EXISTS: has_paid_backlog(),
        Unmet.DELIVERY_NOTE_EXISTS: has_delivery_note(),
    }


def eligible_sql() -> ColumnElement[bool]:
    """No condition unmet: a conjunction, so PostgreSQL plans the NOT EXISTS as anti-joins."""
    return and_(*(not_(unmet) for unmet in unmet_sql().values()))


def iter_eligible_ids(session: Session, size: int) -> Iterator[list[int]]:
    """Every eligible order id in id order, `size` at a time, from one streamed query (a
    server-side cursor on PostgreSQL): memory stays flat however many orders there are, and the
    table is read once."""
    query = (
        select(Order.id).where(eligible_sql()).order_by(Order.id).execution_options(yield_per=size)
    )
    for part in session.execute(query).partitions(size):
        yield [int(row[0]) for row in part]


def ids_by_number(session: Session, numbers: Sequence[str]) -> dict[str, int]:
    """Order ids of those `numbers` that exist."""
    query = select(Order.number, Order.id).where(Order.number.in_(list(numbers)))
    return {str(n): int(i) for n, i in session.execute(query)}


def lock_orders(session: Session, order_ids: Sequence[int]) -> None:
    """Row-lock the orders in id order (a fixed order: two chunks over the same orders queue
    behind each other instead of deadlocking). Facts read after this see committed work."""
    query = select(Order.id).where(Order.id.in_(list(order_ids))).order_by(Order.id)
    session.execute(query.with_for_update()).all()


def facts(session: Session, order_ids: Sequence[int]) -> list[tuple[int, str, EligibilityFacts]]:
    """(id, number, facts) of the orders, in one statement."""
    query = (
        select(
            Order.id,
            Order.number,
            Order.payment_method,
            Order.payment_status,
            Order.paid,
            Order.total,
            Order.confirmation_status,
            Order.fulfillment_status,
            Order.archived,
            has_paid_backlog(),
            has_delivery_note(),
        )
        .where(Order.id.in_(list(order_ids)))
        .order_by(Order.id)
    )
    return [(int(r[0]), str(r[1]), _facts(r)) for r in session.execute(query)]


def _facts(row: Any) -> EligibilityFacts:
    # SQLite gives booleans as integers.
    return EligibilityFacts(
        payment_method=str(row[2]),
        payment_status=str(row[3]),
        paid=int(row[4]),
        total=int(row[5]),
        confirmation_status=str(row[6]),
        fulfillment_status=str(row[7]),
        archived=bool(row[8]),
        has_paid_backlog=bool(row[9]),
        has_delivery_note=bool(row[10]),
    )


def line_counts(session: Session, order_ids: Sequence[int]) -> dict[int, int]:
    """How many paid backlog SKUs each order would get (its lines with a quantity)."""
    query = (
        select(OrderLine.order_id, func.count())
        .where(OrderLine.order_id.in_(list(order_ids)), OrderLine.quantity > 0)
        .group_by(OrderLine.order_id)
    )
    return {int(o): int(n) for o, n in session.execute(query)}


def create_paid(
    session: Session, order_ids: Sequence[int], at: datetime
) -> list[tuple[int, str, int]]:
    """One paid backlog SKU per line of the orders, its whole quantity (an eligible order has no
    delivery note, so nothing of it was delivered); (order_id, sku, quantity) of those new.
    A line that already has one keeps it: the partial unique index makes a re-run a no-op."""
    source = lines_as_backlog(BacklogKind.PAID, at, with_line_id=True).where(
        OrderLine.order_id.in_(list(order_ids))
    )
    stmt = (
        dialect_insert(session, cast(Table, BacklogSku.__table__))
        .from_select(BACKLOG_COLUMNS, source)
        .on_conflict_do_nothing(index_elements=["line_id"], index_where=text("kind = 'paid'"))
        .returning(BacklogSku.order_id, BacklogSku.sku, BacklogSku.quantity)
    )
    return [(int(o), str(s), int(q)) for o, s, q in session.execute(stmt)]


def empty_regular(session: Session, order_ids: Sequence[int]) -> None:
    """The orders' regular backlog gives up what moved to paid backlog (all of it: nothing was
    delivered), so every undelivered quantity sits in exactly one backlog."""
    session.execute(
        update(BacklogSku)
        .where(
            and_(
                BacklogSku.order_id.in_(list(order_ids)),
                BacklogSku.kind == REGULAR,
                BacklogSku.remaining > 0,
            )
        )
        .values(remaining=0)
    )


def lock_lines(session: Session, order_ids: Sequence[int], at: datetime) -> None:
    """Lines of orders with paid backlog can no longer change (`lines_locked`)."""
    session.execute(
        update(Order).where(Order.id.in_(list(order_ids))).values(lines_locked=True, updated_at=at)
    )
