"""What every handler shares: its signature, and waiting for an order that is not here yet."""

from __future__ import annotations

from collections.abc import Callable

from models.db.commerce import Order
from models.db.orders import find_order
from models.db.uow import UnitOfWork
from models.domain.errors import OrderflowError
from tasks.messages.catalogue import DecodedMessage

# A handler applies one message inside the caller's transaction. It returns the number of an
# order it created (so messages parked for that order can be applied now), or None.
Handler = Callable[[UnitOfWork, DecodedMessage], str | None]


class AwaitingOrder(OrderflowError):  # noqa: N818 - a state, not a failure
    """The message refers to an order that has not arrived yet: park it."""

    def __init__(self, number: str) -> None:
        super().__init__("awaiting_order", f"order {number} is not known yet")
        self.number = number


def require_order(uow: UnitOfWork, number: str) -> Order:
    """The order, row-locked; park the message when it does not exist yet."""
    order = find_order(uow.session, number, for_update=True)
    if order is None:
        raise AwaitingOrder(number)
    return order
