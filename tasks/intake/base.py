"""What every handler shares: its signature, and waiting for an order that is not here yet."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select

from models.db.commerce import Order
from models.db.orders import find_order
from models.db.uow import UnitOfWork
from models.domain.errors import OrderflowError
from tasks.messages.catalogue import DecodedMessage

# A handler applies one message inside the caller's transaction. It returns the key of what
# it created (`order:N`, `manufacturer:ID`), so messages parked for it can be applied now.
Handler = Callable[[UnitOfWork, DecodedMessage], str | None]


class Awaiting(OrderflowError):  # noqa: N818 - a state, not a failure
    """The message refers to something that has not arrived yet: park it under `key`."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"awaiting_{kind}", f"{kind} {ident} is not known yet")
        self.key = f"{kind}:{ident}"


def require_order(uow: UnitOfWork, number: str) -> Order:
    """The order, row-locked; park the message when it does not exist yet, or when this
    transaction parked an earlier message about it (the order may have been committed by
    another consumer since): messages about one order keep their order."""
    if f"order:{number}" in uow.parked_for:
        raise Awaiting("order", number)
    order = find_order(uow.session, number, for_update=True)
    if order is None:
        raise Awaiting("order", number)
    return order


def lock_run(uow: UnitOfWork, numbers: Sequence[str]) -> dict[str, Order] | None:
    """The orders a set-based run is about, by number, row-locked in id order (so that two
    consumers with overlapping runs cannot deadlock); None when the run must go one by one
    instead: a number repeats, or an order is not here yet."""
    if len(set(numbers)) != len(numbers):
        return None
    query = select(Order).where(Order.number.in_(numbers)).order_by(Order.id).with_for_update()
    found = {order.number: order for order in uow.session.scalars(query)}
    return found if len(found) == len(numbers) else None
