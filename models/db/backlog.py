"""Backlog statements: regular backlog made from a confirmed order's lines and kept in step with
them, delivery notes consuming backlog SKUs, and the paid-backlog listing for exports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, insert, literal, null, select, update
from sqlalchemy.orm import Session

from models.db.base import UTCDateTime
from models.db.commerce import BacklogSku, DeliveryNote, DeliveryNoteLine, Order, OrderLine
from models.domain.backlog import check_lines_may_follow
from models.domain.delivery import BacklogPiece, Take
from models.domain.statuses import BacklogKind, ConfirmationStatus, FulfillmentStatus

REGULAR, PAID = BacklogKind.REGULAR.value, BacklogKind.PAID.value
EXPORT_CHUNK = 1000
# Fulfillment statuses whose goods have left: nothing of the order is undelivered (I7).
GOODS_GONE = frozenset({FulfillmentStatus.SHIPPED.value, FulfillmentStatus.FULFILLED.value})


class OverDeliveryError(RuntimeError):
    """A take found less remaining than planned: the order row lock was not held."""


def has_delivery_note(session: Session, order_id: int) -> bool:
    """Whether any delivery note was made for the order."""
    return bool(session.scalar(select(exists().where(DeliveryNote.order_id == order_id))))


def _has_backlog(session: Session, order_id: int) -> bool:
    return bool(session.scalar(select(exists().where(BacklogSku.order_id == order_id))))


BACKLOG_COLUMNS = [
    "order_id",
    "line_id",
    "sku",
    "kind",
    "quantity",
    "remaining",
    "unit_price",
    "created_at",
]


def lines_as_backlog(
    kind: BacklogKind, at: datetime, *, with_line_id: bool
) -> Select[*tuple[Any, ...]]:
    """Order lines (with a quantity) as backlog rows of `kind`, in BACKLOG_COLUMNS order;
    the caller narrows it to its orders."""
    return select(
        OrderLine.order_id,
        OrderLine.id if with_line_id else null(),
        OrderLine.sku,
        literal(kind.value),
        OrderLine.quantity,
        OrderLine.quantity,
        OrderLine.unit_price,
        bindparam("at", at, type_=UTCDateTime()),
    ).where(OrderLine.quantity > 0)


def ensure_regular(session: Session, order: Order, at: datetime) -> int:
    """A confirmed order's lines become regular backlog, once: only while it has no backlog
    at all. Returns how many rows were made."""
    return ensure_regular_many(session, [order], at)


def ensure_regular_many(session: Session, orders: Sequence[Order], at: datetime) -> int:
    """`ensure_regular` for many orders in at most two statements."""
    wanted = [
        o.id
        for o in orders
        if o.confirmation_status == ConfirmationStatus.CONFIRMED.value
        and not o.lines_locked
        and o.fulfillment_status not in GOODS_GONE
    ]
    if not wanted:
        return 0
    session.flush()  # lines added through the session must be visible to the INSERT ... SELECT
    having = select(BacklogSku.order_id).where(BacklogSku.order_id.in_(wanted)).distinct()
    taken = set(session.scalars(having))
    bare = [order_id for order_id in wanted if order_id not in taken]
    if not bare:
        return 0
    source = lines_as_backlog(BacklogKind.REGULAR, at, with_line_id=False).where(
        OrderLine.order_id.in_(bare)
    )
    made = session.execute(insert(BacklogSku).from_select(BACKLOG_COLUMNS, source))
    return int(made.rowcount)  # type: ignore[attr-defined]


def mark_shipped(session: Session, order_ids: Sequence[int]) -> None:
    """The goods left with a shipment: nothing of these orders' backlog is undelivered now."""
    if order_ids:
        session.execute(
            update(BacklogSku)
            .where(BacklogSku.order_id.in_(order_ids), BacklogSku.remaining > 0)
            .values(remaining=0)
        )


def follow_lines(session: Session, order: Order, at: datetime) -> None:
    """After the lines were replaced: the regular backlog becomes the new lines. The caller has
    checked that nothing was delivered (no delivery note), so no note refers to these rows."""
    if order.lines_locked:
        return
    session.flush()
    session.execute(
        delete(BacklogSku).where(BacklogSku.order_id == order.id, BacklogSku.kind == REGULAR)
    )
    ensure_regular(session, order, at)


def follow_split(session: Session, order: Order, backorder: Order, at: datetime) -> None:
    """After a split: the order's regular backlog is what it kept, the backorder's what moved.
    Refused (`lines_delivered`) once a delivery note was made from the order's lines."""
    check_lines_may_follow(has_delivery_note=has_delivery_note(session, order.id))
    follow_lines(session, order, at)
    ensure_regular(session, backorder, at)


def open_pieces(session: Session, order_id: int) -> list[BacklogPiece]:
    """The order's backlog SKUs with something left, row-locked."""
    query = (
        select(BacklogSku)
        .where(BacklogSku.order_id == order_id, BacklogSku.remaining > 0)
        .order_by(BacklogSku.id)
        .with_for_update()
    )
    return [
        BacklogPiece(row.id, row.sku, BacklogKind(row.kind), row.remaining, row.unit_price)
        for row in session.scalars(query)
    ]


def add_note(
    session: Session,
    order_id: int,
    takes: Sequence[Take],
    *,
    reference: str | None,
    envelope_id: str | None,
    at: datetime,
) -> DeliveryNote:
    """The note and its lines; each take consumes its backlog SKU by a conditional update."""
    note = DeliveryNote(
        order_id=order_id, created_at=at, envelope_id=envelope_id, reference=reference
    )
    session.add(note)
    session.flush()
    for take in takes:
        done = session.execute(
            update(BacklogSku)
            .where(BacklogSku.id == take.backlog_id, BacklogSku.remaining >= take.quantity)
            .values(remaining=BacklogSku.remaining - take.quantity)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise OverDeliveryError(f"backlog SKU {take.backlog_id} had less than planned")
    session.execute(
        insert(DeliveryNoteLine),
        [
            {
                "note_id": note.id,
                "backlog_sku_id": t.backlog_id,
                "sku": t.sku,
                "quantity": t.quantity,
                "billable": t.billable,
                "amount": t.amount,
                "details": {"kind": t.kind.value},
            }
            for t in takes
        ],
    )
    return note


def note_label(note_id: int, reference: str | None) -> str:
    """How a note is named in listings: its reference, else its id."""
    return reference or f"note-{note_id}"


@dataclass(frozen=True)
class PaidBacklogRow:
    """One paid backlog SKU with the notes that consumed it."""

    number: str
    sku: str
    quantity: int
    remaining: int
    created_at: datetime
    consumed_by: list[tuple[str, int]]  # (note label, quantity)


def iter_paid_backlog(session: Session) -> Iterator[PaidBacklogRow]:
    """Every paid backlog SKU in creation order, streamed, with what consumed it."""
    query = (
        select(
            BacklogSku.id,
            Order.number,
            BacklogSku.sku,
            BacklogSku.quantity,
            BacklogSku.remaining,
            BacklogSku.created_at,
            DeliveryNote.id,
            DeliveryNote.reference,
            DeliveryNoteLine.quantity,
        )
        .join(Order, Order.id == BacklogSku.order_id)
        .outerjoin(DeliveryNoteLine, DeliveryNoteLine.backlog_sku_id == BacklogSku.id)
        .outerjoin(DeliveryNote, DeliveryNote.id == DeliveryNoteLine.note_id)
        .where(BacklogSku.kind == PAID)
        .order_by(BacklogSku.id, DeliveryNoteLine.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    current: tuple[Any, ...] | None = None
    consumed: list[tuple[str, int]] = []
    for row in session.execute(query):
        if current is not None and row[0] != current[0]:
            yield _paid_row(current, consumed)
            consumed = []
        current = tuple(row)
        if row[6] is not None:
            consumed.append((note_label(int(row[6]), row[7]), int(row[8])))
    if current is not None:
        yield _paid_row(current, consumed)


def _paid_row(row: tuple[Any, ...], consumed: list[tuple[str, int]]) -> PaidBacklogRow:
    return PaidBacklogRow(
        number=str(row[1]),
        sku=str(row[2]),
        quantity=int(row[3]),
        remaining=int(row[4]),
        created_at=row[5],
        consumed_by=consumed,
    )
