"""`inventory.set`: the on-hand stock level of a SKU."""

from __future__ import annotations

from models.db.commerce import Inventory
from models.db.uow import UnitOfWork
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.inventory import InventorySetV1


def set_inventory(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Set on-hand to the counted quantity; reservations stay as they are."""
    data = message.data_as(InventorySetV1)
    row = uow.session.get(Inventory, data.sku, with_for_update=True)
    if row is None:
        uow.session.add(Inventory(sku=data.sku, on_hand=data.quantity, reserved=0))
    else:
        row.on_hand = data.quantity
