"""The demo's messages: a realistic morning at an order desk, with a few bad inputs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from tasks.messages.signing import sign
from workers.client import envelope
from workers.wire import dumps

PRODUCER = "demo-storefront"


def _manufacturers() -> list[dict[str, Any]]:
    return [
        {"id": "oem-acme", "name": "ACME Tools GmbH", "sla_business_days": 1,
         "timezone": "Europe/Berlin", "holiday_country": "DE", "holiday_subdivision": "BY",
         "cutoff_hour": 15, "notify_email": "orders@acme.example"},
        {"id": "oem-north", "name": "Northwind Supply Ltd", "sla_business_days": 2,
         "timezone": "Europe/London", "holiday_country": "GB", "holiday_subdivision": "ENG",
         "cutoff_hour": 17, "notify_email": "oc@northwind.example"},
    ]  # fmt: skip


def _order(number: str, index: int, placed_at: datetime) -> dict[str, Any]:
    card = index % 3 != 2
    return {
        "number": number,
        "customer": {"id": f"C-{1000 + index % 7}", "email": f"customer{index % 7}@example.com",
                     "name": f"Customer {index % 7}"},
        "manufacturer_id": "oem-acme" if index % 2 == 0 else "oem-north",
        "currency": "EUR",
        "lines": [
            {"sku": f"DRILL-{index % 4}", "quantity": 1 + index % 3, "unit_price": 12_900},
            {"sku": "LEAFLET-DE", "quantity": 1, "unit_price": 0, "is_insert": True},
        ],
        "payment_method": "stripe_card" if card else "on_account",
        **({"stripe_payment_intent_id": f"pi_demo_{index:04d}"} if card else {}),
        "placed_at": placed_at.isoformat(),
    }  # fmt: skip


def scenario(now: datetime, key_id: str, secret: bytes) -> list[tuple[str, bytes]]:
    """(label, body) pairs in publishing order: the good, the late, the duplicated, the bad."""

    def signed(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return sign(envelope(type_, data, producer=PRODUCER), key_id, secret)

    out: list[tuple[str, bytes]] = []
    for data in _manufacturers():
        out.append(("manufacturer", dumps(signed("manufacturer.upserted", data))))
    # A confirmation that overtakes its order: parked, then applied when the order arrives.
    out.append(("early confirmation", dumps(signed("order.confirmed",
                {"number": "DEMO-1011", "at": now.isoformat()}))))  # fmt: skip
    for index in range(12):
        placed = now - timedelta(hours=30 - index * 2)
        out.append(
            ("order", dumps(signed("order.placed", _order(f"DEMO-{1000 + index}", index, placed))))
        )
    for index in range(0, 12, 2):
        out.append(("acceptance", dumps(signed("order.accepted",
                    {"number": f"DEMO-{1000 + index}", "at": now.isoformat()}))))  # fmt: skip
    for index in range(0, 12, 4):
        confirmed = dumps(signed("order.confirmed", {"number": f"DEMO-{1000 + index}",
                                                     "at": now.isoformat()}))  # fmt: skip
        out.append(("confirmation", confirmed))
        out.append(("duplicate delivery", confirmed))
    out.append(("stock count", dumps(signed("inventory.set", {"sku": "DRILL-1", "quantity": 40}))))
    out.append(("packing", dumps(signed("order.fulfillment_changed", {"number": "DEMO-1001",
                "status": "processing", "note": "Gift wrap requested"}))))  # fmt: skip
    out.append(("bank transfer", dumps(signed("payment.recorded", {"number": "DEMO-1002",
                "amount": 38_700, "method": "on_account", "reference": "SEPA-4471",
                "at": now.isoformat()}))))  # fmt: skip
    out.append(("shipment", dumps(signed("order.shipped", {"number": "DEMO-1005",
                "tracking_numbers": ["00340434161234567890"], "carrier": "DHL",
                "note": "Left with the neighbour at no. 12"}))))  # fmt: skip
    out.append(("archive", dumps(signed("order.archived", {"number": "DEMO-1009"}))))
    out.extend(_bad(now, key_id, secret))
    return out


def _bad(now: datetime, key_id: str, secret: bytes) -> list[tuple[str, bytes]]:
    tampered = sign(envelope("order.placed", _order("DEMO-EVIL", 1, now), producer=PRODUCER),
                    key_id, secret)  # fmt: skip
    tampered["data"]["currency"] = "USD"
    unsigned_money = envelope("order.shipped", {"number": "DEMO-1000", "tracking_numbers": ["1Z"],
                              "notify_customer": True}, producer=PRODUCER)  # fmt: skip
    stray = {**_order("DEMO-2000", 0, now), "manufacturer_id": "oem-nobody"}
    unknown_oem = sign(envelope("order.placed", stray, producer=PRODUCER), key_id, secret)
    future = sign({"id": str(uuid.uuid4()), "type": "order.placed", "version": 7,
                   "occurred_at": now.isoformat(), "producer": PRODUCER, "data": {}},
                  key_id, secret)  # fmt: skip
    return [
        ("bad: not JSON", b"<order number='DEMO-X'/>"),
        ("bad: tampered", dumps(tampered)),
        ("bad: unsigned shipment", dumps(unsigned_money)),
        ("for an unknown manufacturer", dumps(unknown_oem)),
        ("bad: unknown version", dumps(future)),
    ]
