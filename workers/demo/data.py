"""The demo's messages: a realistic morning at an order desk, with a few bad inputs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tasks.messages.signing import sign
from workers.queue.client import envelope
from workers.queue.wire import dumps

PRODUCER = "demo-storefront"
# (order number, amount) -> the PaymentIntent authorized for it (a test's Stripe fake makes real
# ones; the demo, which has no Stripe, names them).
IntentFor = Callable[[str, int], str]


def _manufacturers() -> list[dict[str, Any]]:
    return [
        {
            "id": "oem-acme",
            "name": "ACME Tools GmbH",
            "sla_business_days": 1,
            "timezone": "Europe/Berlin",
            "holiday_country": "DE",
            "holiday_subdivision": "BY",
            "cutoff_hour": 15,
            "notify_email": "orders@acme.example",
        },
        {
            "id": "oem-north",
            "name": "Northwind Supply Ltd",
            "sla_business_days": 2,
            "timezone": "Europe/London",
            "holiday_country": "GB",
            "holiday_subdivision": "ENG",
            "cutoff_hour": 17,
            "notify_email": "oc@northwind.example",
        },
    ]


def _total(index: int) -> int:
    return 12_900 * (1 + index % 3)


def _order(
    number: str, index: int, placed_at: datetime, intent_for: IntentFor | None = None
) -> dict[str, Any]:
    card = index % 3 != 2
    intent = intent_for(number, _total(index)) if intent_for and card else f"pi_demo_{index:04d}"
    return {
        "number": number,
        "customer": {
            "id": f"C-{1000 + index % 7}",
            "email": f"customer{index % 7}@example.com",
            "name": f"Customer {index % 7}",
        },
        "manufacturer_id": "oem-acme" if index % 2 == 0 else "oem-north",
        "currency": "EUR",
        "lines": [
            {"sku": f"DRILL-{index % 4}", "quantity": 1 + index % 3, "unit_price": 12_900},
            {"sku": "LEAFLET-DE", "quantity": 1, "unit_price": 0, "is_insert": True},
        ],
        "payment_method": "stripe_card" if card else "on_account",
        **({"stripe_payment_intent_id": intent} if card else {}),
        "placed_at": placed_at.isoformat(),
    }


def scenario(
    now: datetime,
    key_id: str,
    secret: bytes,
    *,
    prefix: str = "DEMO",
    intent_for: IntentFor | None = None,
) -> list[tuple[str, bytes]]:
    """(label, body) pairs in publishing order: the good, the late, the duplicated, the bad.
    Order numbers start with `prefix`, so several copies of the morning can run at once."""

    def signed(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return sign(envelope(type_, data, producer=PRODUCER), key_id, secret)

    out: list[tuple[str, bytes]] = []
    for data in _manufacturers():
        out.append(("manufacturer", dumps(signed("manufacturer.upserted", data))))
    # A confirmation that overtakes its order: parked, then applied when the order arrives.
    out.append(
        (
            "early confirmation",
            dumps(signed("order.confirmed", {"number": f"{prefix}-1011", "at": now.isoformat()})),
        )
    )
    for index in range(12):
        placed = now - timedelta(hours=30 - index * 2)
        data = _order(f"{prefix}-{1000 + index}", index, placed, intent_for)
        out.append(("order", dumps(signed("order.placed", data))))
    for index in range(0, 12, 2):
        out.append(
            (
                "acceptance",
                dumps(
                    signed(
                        "order.accepted",
                        {"number": f"{prefix}-{1000 + index}", "at": now.isoformat()},
                    )
                ),
            )
        )
    for index in range(0, 12, 4):
        confirmed = dumps(
            signed("order.confirmed", {"number": f"{prefix}-{1000 + index}", "at": now.isoformat()})
        )
        out.append(("confirmation", confirmed))
        out.append(("duplicate delivery", confirmed))
    out.extend((label, dumps(signed(type_, data))) for label, type_, data in _later(now, prefix))
    out.extend(_bad(now, key_id, secret, prefix))
    return out


def _later(now: datetime, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, type, data) of the morning's other news: stock, packing, a payment, a shipment."""
    return [
        ("stock count", "inventory.set", {"sku": "DRILL-1", "quantity": 40}),
        (
            "packing",
            "order.fulfillment_changed",
            {"number": f"{prefix}-1001", "status": "processing", "note": "Gift wrap requested"},
        ),
        (
            "bank transfer",
            "payment.recorded",
            {
                "number": f"{prefix}-1002",
                "amount": 38_700,
                "method": "on_account",
                "reference": "SEPA-4471",
                "at": now.isoformat(),
            },
        ),
        (
            "shipment",
            "order.shipped",
            {
                "number": f"{prefix}-1005",
                "tracking_numbers": ["00340434161234567890"],
                "carrier": "DHL",
                "note": "Left with the neighbour at no. 12",
            },
        ),
        ("archive", "order.archived", {"number": f"{prefix}-1009"}),
    ]


def _bad(now: datetime, key_id: str, secret: bytes, prefix: str) -> list[tuple[str, bytes]]:
    tampered = sign(
        envelope("order.placed", _order(f"{prefix}-EVIL", 1, now), producer=PRODUCER),
        key_id,
        secret,
    )
    tampered["data"]["currency"] = "USD"
    unsigned_money = envelope(
        "order.shipped",
        {"number": f"{prefix}-1000", "tracking_numbers": ["1Z"], "notify_customer": True},
        producer=PRODUCER,
    )
    # A hold of its own: one PaymentIntent belongs to one order family.
    stray = {
        **_order(f"{prefix}-2000", 0, now),
        "manufacturer_id": "oem-nobody",
        "stripe_payment_intent_id": "pi_demo_stray",
    }
    unknown_oem = sign(envelope("order.placed", stray, producer=PRODUCER), key_id, secret)
    future = sign(
        {
            "id": str(uuid.uuid4()),
            "type": "order.placed",
            "version": 7,
            "occurred_at": now.isoformat(),
            "producer": PRODUCER,
            "data": {},
        },
        key_id,
        secret,
    )
    return [
        ("bad: not JSON", b"<order number='DEMO-X'/>"),
        ("bad: tampered", dumps(tampered)),
        ("bad: unsigned shipment", dumps(unsigned_money)),
        ("for an unknown manufacturer", dumps(unknown_oem)),
        ("bad: unknown version", dumps(future)),
    ]
