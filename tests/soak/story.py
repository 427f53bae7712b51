"""A seeded day at the order desk: every order gets a role (its story), whose messages go out in
waves and whose end state and effects do not depend on how consumers interleave them.

Waves: 0 set-up (manufacturer, stock), 1 placements and confirmations, 2 what happens before
shipment, 3 shipments and restocks, 4 what needs the captures recorded, 5 what needs the paid
backlog. Fulfillment changes of one order are in increasing waves with increasing
`occurred_at`; a duplicate is the very same envelope; bad input goes by raw XADD only.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests import factories as f
from tests.soak.oracle import Expectation, Final

WAVES = 6
STOCKED = [f"STOCK-{k}" for k in range(1, 9)]
BACKORDER_SKUS = [f"BO-{k}" for k in range(1, 41)]
OOS_INSERT, INSERT = "LEAFLET-OOS", "LEAFLET-DE"
MANUFACTURER = "oem-acme"


@dataclass
class Item:
    """One thing a producer sends: an envelope (by `orderflow publish` or XADD) or raw bytes."""

    body: dict[str, Any] | bytes
    path: str  # "publish" | "xadd"


@dataclass
class Order:
    """An order as its story knows it."""

    number: str
    method: str
    lines: list[dict[str, Any]]
    pi: str | None = None

    @property
    def email(self) -> str:
        return f"{self.number.lower()}@soak.example"

    @property
    def total(self) -> int:
        return sum(int(x["quantity"]) * int(x["unit_price"]) for x in self.lines)


@dataclass
class Day:
    """The waves to publish, and what must come of them."""

    seed: int
    waves: list[list[Item]]
    expect: Expectation
    parked_after: list[int]  # envelopes still parked once each wave has settled
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def envelopes(self) -> int:
        return sum(len(w) for w in self.waves)


class Builder:
    """Writes the messages of the stories and, beside them, what they must lead to."""

    def __init__(self, seed: int, authorize: Callable[[int], str]) -> None:
        self.rng = random.Random(seed)
        self.authorize = authorize
        self.t0 = datetime.now(UTC).replace(microsecond=0)
        self.waves: list[list[dict[str, Any]]] = [[] for _ in range(WAVES)]
        self.expect = Expectation()
        self.seq = 0

    def send(self, wave: int, type_: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        at = self.t0 + timedelta(seconds=10 * wave, microseconds=self.seq)
        envelope = f.envelope(type_, occurred_at=at.isoformat(), **fields)
        self.waves[wave].append(envelope)
        return envelope

    def order(self, number: str, method: str, lines: list[dict[str, Any]]) -> Order:
        o = Order(number, method, lines)
        if method == "stripe_card":
            o.pi = self.authorize(o.total)
            self.expect.intents[number] = o.pi
        return o

    def place(self, o: Order, wave: int = 1) -> dict[str, Any]:
        customer = {"id": f"C-{o.number}", "email": o.email, "name": f"Customer {o.number}"}
        return self.send(wave, "order.placed", number=o.number, customer=customer,
                         manufacturer_id=MANUFACTURER, currency="EUR", lines=o.lines,
                         payment_method=o.method, stripe_payment_intent_id=o.pi,
                         placed_at=self.t0.isoformat())  # fmt: skip

    def confirm(self, o: Order, wave: int = 1) -> dict[str, Any]:
        self.expect.mail(o.email, "order_confirmed", o.number)
        return self.send(wave, "order.confirmed", number=o.number,
                         at=self.t0.isoformat(), reference=f"OC-{o.number}")  # fmt: skip

    def fulfil(self, o: Order, wave: int, status: str, *, card: bool = False) -> None:
        """A fulfillment change (its email); `fulfilled` without shipment captures a card."""
        self.send(wave, "order.fulfillment_changed", number=o.number, status=status,
                  note=f"{status} note", notify_customer=True)  # fmt: skip
        self.expect.mail(o.email, f"fulfillment_{status}", o.number)
        if card:
            self.captured(o, o.total, [o])

    def ship(self, o: Order, wave: int) -> None:
        self.send(wave, "order.shipped", number=o.number, tracking_numbers=[f"TRK-{o.number}"],
                  carrier="DHL", note=None, notify_customer=True)  # fmt: skip
        self.expect.mail(o.email, "fulfillment_shipped", o.number)

    def captured(self, root: Order, amount: int, paid: list[Order]) -> None:
        assert root.pi is not None
        self.expect.capture(root.pi, amount)
        self.expect.event("payment.captured", root.number)
        for member in paid:
            self.expect.mail(root.email, "payment_paid", member.number)

    def pay(self, o: Order, wave: int, amount: int, method: str, *, paid: bool) -> None:
        self.send(wave, "payment.recorded", number=o.number, amount=amount, currency="EUR",
                  method=method, reference=f"REF-{o.number}", at=self.t0.isoformat(),
                  note=None, notify_customer=True)  # fmt: skip
        if paid:
            self.expect.mail(o.email, "payment_paid", o.number)

    def refused(self, envelope: dict[str, Any], reason: str) -> None:
        self.expect.quarantined[reason] += 1
        self.expect.event("message.refused", str(envelope["id"]))

    def final(self, number: str, confirmation: str, fulfillment: str, payment: str,
              **flags: bool) -> None:  # fmt: skip
        self.expect.orders[number] = Final(confirmation, fulfillment, payment, **flags)

    def lines(self, *extra: dict[str, Any]) -> list[dict[str, Any]]:
        sku = self.rng.choice(STOCKED)
        main = {"sku": sku, "quantity": self.rng.randint(1, 3),
                "unit_price": 100 * self.rng.randint(5, 300), "is_insert": False}  # fmt: skip
        leaflet = {"sku": INSERT, "quantity": 1, "unit_price": 0, "is_insert": True}
        return [main, leaflet, *extra]


def line(sku: str, quantity: int, price: int, insert: bool = False) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": price, "is_insert": insert}


def generate(seed: int, orders: int, authorize: Callable[[int], str]) -> Day:
    """The day for `seed`: `orders` orders in roles drawn by weight, duplicates, bad input."""
    from tests.soak import roles  # the stories use the builder above

    b = Builder(seed, authorize)
    b.send(0, "manufacturer.upserted", id=MANUFACTURER, notify_email=None,
           notify_webhook_url=None)  # fmt: skip
    for sku in [*STOCKED, INSERT]:
        b.send(0, "inventory.set", sku=sku, quantity=1_000_000)
    for sku in [*BACKORDER_SKUS, OOS_INSERT]:
        b.send(0, "inventory.set", sku=sku, quantity=0)
    names, weights = zip(*roles.WEIGHTS.items(), strict=True)
    chosen: dict[str, str] = {}
    for index in range(orders):
        role = b.rng.choices(names, weights)[0]
        number = f"S{seed}-{index:05d}"
        chosen[number] = role
        roles.ROLES[role](b, number)
    roles.restock(b)
    roles.request_paid_backlog(b)
    waves = _with_copies_and_bad_input(b)
    return Day(seed, waves, b.expect, roles.parked_after(b), chosen)


def _with_copies_and_bad_input(b: Builder) -> list[list[Item]]:
    """Each wave in order (a few confirmations moved ahead of their placements), about 5 % of
    the envelopes sent again (same wave or up to two later), about 1 % bad input."""
    rng = b.rng
    waves = [[Item(e, rng.choice(("publish", "xadd"))) for e in wave] for wave in b.waves]
    confirmations = [i for i in waves[1] if isinstance(i.body, dict)
                     and i.body["type"] == "order.confirmed"]  # fmt: skip
    early = rng.sample(confirmations, len(confirmations) * 3 // 100)
    waves[1] = early + [i for i in waves[1] if i not in early]
    total = sum(len(w) for w in waves)
    for wave in range(1, WAVES):
        for item in rng.sample(waves[wave], len(waves[wave]) // 20):
            later = min(WAVES - 1, wave + rng.randint(0, 2))
            copy = Item(item.body, rng.choice(("publish", "xadd")))
            waves[later].insert(rng.randint(0, len(waves[later])), copy)
    for index in range(max(4, total // 100)):
        wave = 1 + index % (WAVES - 1)
        reason, body = _bad(b, index)
        b.expect.quarantined[reason] += 1
        waves[wave].insert(rng.randint(0, len(waves[wave])), Item(body, "xadd"))
    return waves


def _bad(b: Builder, index: int) -> tuple[str, bytes]:
    """Bad input of four kinds, by turns; none of it may have any effect."""
    kind = index % 4
    if kind == 0:
        return "not_json", f'{{"id": "broken-{b.t0.timestamp()}-{index}", "type": '.encode()
    number = f"NOBODY-{index}"
    if kind == 1:
        tampered = f.envelope("order.accepted", number=number, at=b.t0.isoformat())
        tampered["data"]["number"] = number + "-X"
        return "signature_invalid", f.body(tampered)
    if kind == 2:
        unsigned = f.envelope("order.shipped", signed=False, number=number)
        return "signature_missing", f.body(unsigned)
    wrong = f.envelope("order.archived", number=number)
    wrong["version"] = 2
    wrong["id"] = str(uuid.uuid4())
    return "unknown_version", json.dumps(wrong).encode()
