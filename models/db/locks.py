"""The lock statements of the global lock order (docs/decisions.md, "Ingress under concurrent
load"): intake keys, then orders by id, then stock by SKU. PostgreSQL only; SQLite serializes
every writer with BEGIN IMMEDIATE, so there these are never called.

Each takes its locks in one statement, in ascending order; with `wait=False` nothing waits
(a busy lock makes it return False), so a caller that only tries can never be in a deadlock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BOOLEAN, INTEGER
from sqlalchemy.orm import Session

from models.db.commerce import Inventory, Order, OrderLine, StockReservation

# The first half of our two-int advisory keys: a key space apart from the one-bigint keys
# (the stock allocation lock), which PostgreSQL keeps separately.
INTAKE_SPACE = 0x0F1A

_LOCK_KEYS = text(
    "SELECT CASE WHEN s THEN pg_advisory_xact_lock_shared(:space, k)::text"
    " ELSE pg_advisory_xact_lock(:space, k)::text END"
    " FROM unnest(:keys, :shared) AS t(k, s)"  # unnest keeps the array order
).bindparams(bindparam("keys", type_=ARRAY(INTEGER)), bindparam("shared", type_=ARRAY(BOOLEAN)))
_TRY_KEYS = text(
    "SELECT bool_and(CASE WHEN s THEN pg_try_advisory_xact_lock_shared(:space, k)"
    " ELSE pg_try_advisory_xact_lock(:space, k) END)"
    " FROM unnest(:keys, :shared) AS t(k, s)"
).bindparams(bindparam("keys", type_=ARRAY(INTEGER)), bindparam("shared", type_=ARRAY(BOOLEAN)))


def key_number(key: str) -> int:
    """The 32-bit advisory key of an intake key such as `order:M1` (a collision only makes two
    unrelated things wait for each other, never a deadlock: the order is by number)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), signed=True)


def lock_keys(
    session: Session, exclusive: Iterable[str], shared: Iterable[str], *, wait: bool = True
) -> bool:
    """Take the intake keys (shared ones only where no exclusive one hashes alike) in ascending
    number order, until the transaction ends; False when `wait` is off and one was busy."""
    modes: dict[int, bool] = {key_number(key): True for key in shared}
    modes.update({key_number(key): False for key in exclusive})
    if not modes:
        return True
    numbers = sorted(modes)
    params = {"space": INTAKE_SPACE, "keys": numbers, "shared": [modes[n] for n in numbers]}
    if wait:
        session.execute(_LOCK_KEYS, params).all()
        return True
    return bool(session.execute(_TRY_KEYS, params).scalar_one())


@dataclass(frozen=True)
class OrderFacts:
    """What an order's locks depend on, read without locking it."""

    id: int
    number: str
    customer_id: str
    manufacturer_id: str
    intent: str | None


def order_facts(session: Session, numbers: Iterable[str]) -> list[OrderFacts]:
    """The facts of the orders with these numbers (those that exist)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return []
    query = select(
        Order.id,
        Order.number,
        Order.customer_id,
        Order.manufacturer_id,
        Order.stripe_payment_intent_id,
    )
    rows = session.execute(query.where(Order.number.in_(wanted)))
    return [OrderFacts(int(i), str(n), str(c), str(m), p) for i, n, c, m, p in rows]


def lock_orders(
    session: Session,
    numbers: Iterable[str],
    intents: Iterable[str],
    ids: Iterable[int],
    *,
    wait: bool = True,
) -> list[int] | None:
    """Row-lock, in id order, the orders with these numbers, PaymentIntents or ids; their ids,
    or None when `wait` is off and one of them was locked by another transaction."""
    wanted_numbers, wanted_intents = sorted(set(numbers)), sorted(set(intents))
    wanted_ids = sorted(set(ids))
    if not (wanted_numbers or wanted_intents or wanted_ids):
        return []
    which = (
        Order.number.in_(wanted_numbers)
        | Order.stripe_payment_intent_id.in_(wanted_intents)
        | Order.id.in_(wanted_ids)
    )
    query = select(Order.id).where(which).order_by(Order.id)
    if wait:
        return [int(i) for i in session.scalars(query.with_for_update())]
    present = set(session.scalars(query))
    got = [int(i) for i in session.scalars(query.with_for_update(skip_locked=True))]
    return got if present <= set(got) else None


def stock_skus(session: Session, order_ids: Iterable[int], split_ids: Iterable[int]) -> set[str]:
    """SKUs whose stock rows these orders' changes may update: what they hold reserved, and the
    lines of the orders to be split."""
    held = sorted(set(order_ids))
    lines = sorted(set(split_ids))
    skus: set[str] = set()
    if held:
        query = select(StockReservation.sku).where(StockReservation.order_id.in_(held))
        skus.update(session.scalars(query.distinct()))
    if lines:
        skus.update(session.scalars(select(OrderLine.sku).where(OrderLine.order_id.in_(lines))))
    return skus


def lock_stock(session: Session, skus: Iterable[str], *, wait: bool = True) -> bool:
    """Row-lock the stock rows of these SKUs in SKU order; False when `wait` is off and one of
    them was locked by another transaction."""
    wanted = sorted(set(skus))
    if not wanted:
        return True
    query = select(Inventory.sku).where(Inventory.sku.in_(wanted)).order_by(Inventory.sku)
    if wait:
        session.scalars(query.with_for_update()).all()
        return True
    present = set(session.scalars(query))
    return present <= set(session.scalars(query.with_for_update(skip_locked=True)))
