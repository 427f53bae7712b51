"""Version-1 messages about stock levels (job 3 releases backorders on restock)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from tasks.messages.v1.common import MessageData, Quantity, Sku, StockLevel


class InventorySetV1(MessageData):
    """Sets the on-hand quantity of a SKU (a stock count; 0 means out of stock)."""

    TYPE = "inventory.set"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sku": "DRILL-18V", "quantity": 40}]}
    )

    sku: Sku
    quantity: StockLevel = Field(description="New on-hand quantity (>= 0).")


class InventoryReceivedV1(MessageData):
    """Adds received stock to a SKU and releases waiting backorders, oldest first."""

    TYPE = "inventory.received"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sku": "DRILL-18V", "quantity": 12}]}
    )

    sku: Sku
    quantity: Quantity = Field(description="Quantity received (> 0).")
