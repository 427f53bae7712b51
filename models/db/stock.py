"""Stock statements: the allocation lock, availability, reservations and waiting backorders.

Every allocation (a split, a restock release) first takes one transaction-scoped lock, so two
of them never plan from the same stale availability; reservations are also conditional
updates, so even a bug cannot reserve more than is on hand. SQLite serializes all writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.orm import Session

from models.db.commerce import Inventory, Order, OrderLine, StockReservation
from models.db.sql import insert_many_ignore
from models.domain.backorders import Waiting
from models.domain.statuses import FulfillmentStatus

# pg_advisory_xact_lock takes a bigint; any fixed value of ours will do.
_ALLOCATION_LOCK_KEY = 0x0F_10_57_0C
BACKORDERED = FulfillmentStatus.BACKORDERED.value
_CHUNK = 1000  # ids per IN list, well under every driver's parameter limit


class OverReservationError(RuntimeError):
    """A reservation found less stock than planned: the plan was stale (a bug)."""


def lock_allocation(session: Session, *, wait: bool = True) -> bool:
    """Serialize stock allocation until this transaction ends (PostgreSQL; SQLite already is);
    False when `wait` is off and another transaction holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if not wait:
        query = text("SELECT pg_try_advisory_xact_lock(:key)")
        return bool(session.execute(query, {"key": _ALLOCATION_LOCK_KEY}).scalar_one())
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ALLOCATION_LOCK_KEY})
    return True


def available(session: Session, skus: Iterable[str]) -> dict[str, int]:
    """On hand minus reserved for each SKU (0 for an unknown SKU)."""
    wanted = sorted(set(skus))
    result = dict.fromkeys(wanted, 0)
    query = select(Inventory.sku, Inventory.on_hand - Inventory.reserved).where(
        Inventory.sku.in_(wanted)
    )
    result.update({sku: int(free) for sku, free in session.execute(query)})
    return result


def receive(session: Session, sku: str, quantity: int) -> None:
    """Add received stock to on-hand."""
    insert_many_ignore(session, Inventory, [{"sku": sku, "on_hand": 0, "reserved": 0}], ["sku"])
    session.execute(
        update(Inventory).where(Inventory.sku == sku).values(on_hand=Inventory.on_hand + quantity)
    )


def reserve(session: Session, order_id: int, needs: Mapping[str, int], at: datetime) -> None:
    """Hold stock for an order; refuses (raises) rather than reserve what is not there."""
    reserve_many(session, {order_id: needs}, at)


def reserve_many(session: Session, needs: Mapping[int, Mapping[str, int]], at: datetime) -> None:
    """Hold stock for several orders: one reservation row per (order, SKU)."""
    per_sku: dict[str, int] = {}
    rows = []
    for order_id, order_needs in needs.items():
        for sku, quantity in order_needs.items():
            per_sku[sku] = per_sku.get(sku, 0) + quantity
            rows.append({"order_id": order_id, "sku": sku, "quantity": quantity, "created_at": at})
    for sku in sorted(per_sku):
        quantity = per_sku[sku]
        done = session.execute(
            update(Inventory)
            .where(Inventory.sku == sku, Inventory.on_hand - Inventory.reserved >= quantity)
            .values(reserved=Inventory.reserved + quantity)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise OverReservationError(f"{sku}: less than {quantity} available to reserve")
    if len(insert_many_ignore(session, StockReservation, rows, ["order_id", "sku"])) != len(rows):
        raise OverReservationError("an order already holds a reservation for one of these SKUs")


def waiting_for(session: Session, sku: str) -> list[Waiting]:
    """Backorders with a line of `sku`, oldest first, with everything each of them needs."""
    has_sku = select(OrderLine.order_id).where(OrderLine.sku == sku)
    query = (
        select(Order.id, Order.number, OrderLine.sku, func.sum(OrderLine.quantity))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(
            and_(
                Order.fulfillment_status == BACKORDERED,
                Order.archived.is_(False),
                Order.id.in_(has_sku),
            )
        )
        .group_by(Order.id, Order.number, OrderLine.sku)
        .order_by(Order.placed_at, Order.id, OrderLine.sku)
    )
    numbers: dict[int, str] = {}
    needs: dict[int, dict[str, int]] = {}
    for order_id, number, line_sku, quantity in session.execute(query):
        numbers[order_id] = number
        needs.setdefault(order_id, {})[line_sku] = int(quantity)
    return [Waiting(order_id, numbers[order_id], needs[order_id]) for order_id in numbers]


def held_by(session: Session, order_id: int) -> dict[str, int]:
    """What the order holds, per SKU."""
    query = select(StockReservation.sku, StockReservation.quantity).where(
        StockReservation.order_id == order_id
    )
    return {sku: int(quantity) for sku, quantity in session.execute(query)}


def release_reservations(session: Session, order_id: int) -> dict[str, int]:
    """Give back everything the order holds (it is cancelled, or split again)."""
    return _end_reservations(session, order_id, shipped=False)


def ship_reserved(session: Session, order_id: int) -> dict[str, int]:
    """The goods left: what the order held leaves on-hand as well as the reservation."""
    return _end_reservations(session, order_id, shipped=True)


def ship_reserved_many(session: Session, order_ids: Sequence[int]) -> None:
    """`ship_reserved` for many orders: one statement when none of them holds anything."""
    if order_ids:
        _end_many(session, order_ids, shipped=True)


def _end_reservations(session: Session, order_id: int, *, shipped: bool) -> dict[str, int]:
    return _end_many(session, [order_id], shipped=shipped)


def _end_many(session: Session, order_ids: Sequence[int], *, shipped: bool) -> dict[str, int]:
    """End the orders' reservations; what they held together, per SKU."""
    query = select(StockReservation.sku, func.sum(StockReservation.quantity)).where(
        StockReservation.order_id.in_(order_ids)
    )
    held = {sku: int(qty) for sku, qty in session.execute(query.group_by(StockReservation.sku))}
    if not held:
        return held  # most orders hold nothing: no more statements
    for sku in sorted(held):  # a fixed order, like every other stock update
        values = {"reserved": Inventory.reserved - held[sku]}
        if shipped:
            values["on_hand"] = Inventory.on_hand - held[sku]
        session.execute(update(Inventory).where(Inventory.sku == sku).values(values))
    session.execute(delete(StockReservation).where(StockReservation.order_id.in_(order_ids)))
    return held


def mark_released(session: Session, order_ids: list[int], at: datetime) -> int:
    """Move backorders to processing; only ones still backordered (the count moved)."""
    moved = 0
    for start in range(0, len(order_ids), _CHUNK):
        done = session.execute(
            update(Order)
            .where(
                Order.id.in_(order_ids[start : start + _CHUNK]),
                Order.fulfillment_status == BACKORDERED,
            )
            .values(
                fulfillment_status=FulfillmentStatus.PROCESSING.value,
                fulfillment_changed_at=at,
                updated_at=at,
            )
        )
        moved += int(done.rowcount)  # type: ignore[attr-defined]
    return moved
