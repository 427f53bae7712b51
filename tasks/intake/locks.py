"""What an ingress transaction locks, taken up front in the one global lock order, so that
consumers applying overlapping batches queue behind each other instead of deadlocking.

The order (docs/decisions.md, "Ingress under concurrent load"): the stock allocation lock,
then intake keys by number, then orders by id, then stock rows by SKU. Everything a handler
locks later is one of these (already held) or a row only a holder of one of the keys writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from models.db import locks, stock
from models.db.uow import UnitOfWork
from models.domain.backorders import BACKORDER_SUFFIX
from models.domain.statuses import FulfillmentStatus
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderFulfillmentChangedV1, OrderSplitRequestedV1
from tasks.messages.v1.inventory import InventoryReceivedV1, InventorySetV1
from tasks.messages.v1.manufacturer import ManufacturerUpsertedV1
from tasks.messages.v1.orders import OrderPlacedV1
from tasks.messages.v1.stripe_event import StripeEventV1

_BACKORDERED = FulfillmentStatus.BACKORDERED.value


@dataclass
class LockPlan:
    """What a set of messages will lock, named by intake keys (`order:M1`, `sku:S`, ...)."""

    allocation: bool = False  # a split, a restock, or a move to backordered
    exclusive: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)  # only referenced (a foreign key)
    numbers: set[str] = field(default_factory=set)
    intents: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    restocked: set[str] = field(default_factory=set)
    splits: set[str] = field(default_factory=set)


def family_key(number: str) -> str:
    """One key for an order and its backorders (a split family changes together)."""
    return f"order:{number.split(BACKORDER_SUFFIX, 1)[0]}"


def plan_for(messages: Iterable[DecodedMessage], bodies: Iterable[bytes] = ()) -> LockPlan:
    """The plan of these messages (pure); `bodies` are keyed too (quarantine rows by bytes)."""
    plan = LockPlan()
    plan.exclusive.update(f"body:{hashlib.sha256(body).hexdigest()}" for body in bodies)
    for message in messages:
        _add(plan, message)
    return plan


def _add(plan: LockPlan, message: DecodedMessage) -> None:
    data = message.data
    plan.exclusive.add(f"envelope:{message.envelope.id}")
    number = getattr(data, "number", None)
    if isinstance(number, str):
        plan.numbers.add(number)
        plan.exclusive.add(family_key(number))
    if isinstance(data, OrderPlacedV1):
        plan.exclusive.add(f"customer:{data.customer.id}")
        plan.shared.add(f"manufacturer:{data.manufacturer_id}")
        if data.stripe_payment_intent_id:
            plan.intents.add(data.stripe_payment_intent_id)
    elif isinstance(data, ManufacturerUpsertedV1):
        plan.exclusive.add(f"manufacturer:{data.id}")
    elif isinstance(data, InventorySetV1 | InventoryReceivedV1):
        plan.exclusive.add(f"sku:{data.sku}")
        plan.skus.add(data.sku)
        if isinstance(data, InventoryReceivedV1):
            plan.allocation = True
            plan.restocked.add(data.sku)
    elif isinstance(data, OrderSplitRequestedV1):
        plan.allocation = True
        plan.splits.add(data.number)
    elif isinstance(data, OrderFulfillmentChangedV1) and data.status.value == _BACKORDERED:
        plan.allocation = True  # a new waiting backorder: restocks must not miss it
    elif isinstance(data, StripeEventV1):
        plan.exclusive.add(f"stripe:{data.id}")


def lock_batch(
    uow: UnitOfWork, messages: Sequence[DecodedMessage], bodies: Sequence[bytes]
) -> None:
    """Take, waiting, every lock the batch will need, in the global order (PostgreSQL only)."""
    if uow.db.is_sqlite:
        return  # SQLite: every writer holds the whole database (BEGIN IMMEDIATE)
    _take(uow, plan_for(messages, bodies), wait=True)


def try_lock(
    uow: UnitOfWork,
    messages: Sequence[DecodedMessage],
    bodies: Sequence[bytes] = (),
    keys: Iterable[str] = (),
) -> bool:
    """Take the locks of messages released from parking without waiting for any; False when
    one is busy (they stay parked: the resolver tries again). Never waiting, never deadlocked."""
    if uow.db.is_sqlite:
        return True
    plan = plan_for(messages, bodies)
    plan.exclusive.update(keys)
    return _take(uow, plan, wait=False)


def awaited_key(awaited: str) -> str:
    """The intake key of what parked messages wait for (`order:N`, `manufacturer:M`)."""
    kind, _, ident = awaited.partition(":")
    return family_key(ident) if kind == "order" else awaited


def _take(uow: UnitOfWork, plan: LockPlan, *, wait: bool) -> bool:
    session = uow.session
    if plan.allocation and not stock.lock_allocation(session, wait=wait):
        return False
    known = locks.order_facts(session, plan.numbers)
    waiting = [w for sku in sorted(plan.restocked) for w in stock.waiting_for(session, sku)]
    intents = plan.intents | {o.intent for o in known if o.intent}
    exclusive = plan.exclusive | {f"intent:{i}" for i in intents}
    exclusive |= {family_key(w.number) for w in waiting}
    splits = [o for o in known if o.number in plan.splits]
    # A backorder made by a split refers to its parent's customer and manufacturer.
    shared = plan.shared | {f"customer:{o.customer_id}" for o in splits}
    shared |= {f"manufacturer:{o.manufacturer_id}" for o in splits}
    if not locks.lock_keys(session, exclusive, shared, wait=wait):
        return False
    backorders = [w.order_id for w in waiting]
    ids = locks.lock_orders(session, plan.numbers, intents, backorders, wait=wait)
    if ids is None:
        return False
    skus = plan.skus | {sku for w in waiting for sku in w.needs}
    skus |= locks.stock_skus(session, ids, [o.id for o in splits])
    return locks.lock_stock(session, skus, wait=wait)
