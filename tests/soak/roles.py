"""The stories of the soak: one function per role an order plays, writing its messages by wave
and, beside them, its end state and effects (the oracle). Each story's outcome is the same
whatever order concurrent consumers apply its messages in (see story.py's waves)."""

from __future__ import annotations

from collections.abc import Callable

from tests.soak.story import BACKORDER_SKUS, OOS_INSERT, Builder, Order, line

C, PAID, SHIPPED = "confirmed", "paid", "shipped"


def card_ship(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.fulfil(o, 2, "processing")
    b.ship(o, 3)
    b.captured(o, o.total, [o])
    if b.rng.random() < 0.3:  # Stripe's webhook, after the fact: in line, nothing recorded
        b.send(4, "stripe.event", id="evt_" + n.replace("-", "_"), type="payment_intent.succeeded",
               data={"object": {"id": o.pi, "object": "payment_intent",
                                "metadata": {"order_number": n}}})  # fmt: skip
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def card_ship_fulfil(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.ship(o, 3)
    b.captured(o, o.total, [o])
    b.fulfil(o, 4, "fulfilled")
    b.final(n, C, "fulfilled", PAID, download_allowed=True)


def card_fulfil_unshipped(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.fulfil(o, 2, "processing")
    b.fulfil(o, 3, "fulfilled", card=True)
    b.final(n, C, "fulfilled", PAID, download_allowed=True)


def card_on_hold_then_ship(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.fulfil(o, 2, "on_hold")
    b.fulfil(o, 3, "processing")
    b.ship(o, 4)
    b.captured(o, o.total, [o])
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def card_marked_paid_then_ship(b: Builder, n: str) -> None:
    """Paid in full by hand before shipment: no capture, the hold is released (D3)."""
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.pay(o, 2, o.total, "offline", paid=True)
    b.ship(o, 3)
    assert o.pi is not None
    b.expect.release(o.pi, o.total)
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def card_cancel(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.send(2, "order.cancelled", number=n, reason="changed mind", notify_customer=True)
    b.expect.mail(o.email, "fulfillment_cancelled", n)
    assert o.pi is not None
    b.expect.release(o.pi, o.total)
    b.final(n, C, "cancelled", "voided")


def card_refund(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.ship(o, 3)
    b.captured(o, o.total, [o])
    b.send(4, "order.refund_requested", number=n, reason="damaged", notify_customer=True)
    assert o.pi is not None
    b.expect.refund(o.pi, o.total)
    b.expect.mail(o.email, "payment_refunded", n)
    b.final(n, C, SHIPPED, "refunded")


def card_ship_before_placed(b: Builder, n: str) -> None:
    """Confirmed in wave 1 and shipped in wave 3 before it is placed (both parked)."""
    o = b.order(n, "stripe_card", b.lines())
    b.confirm(o, 1)
    b.ship(o, 3)
    b.place(o, 3)
    b.captured(o, o.total, [o])
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def card_split(b: Builder, n: str, *, locked: bool = False) -> None:
    """Split, restocked, shipped (the whole hold captured), the backorder paid: paid backlog,
    then a delivery note from it (and, if `locked`, a refused line change)."""
    sku = b.rng.choice(BACKORDER_SKUS)
    short = line(sku, b.rng.randint(1, 3), 100 * b.rng.randint(5, 90))
    o = b.order(n, "stripe_card", b.lines(short))
    back = Order(f"{n}-backorder", "stripe_card", [short], o.pi)
    b.place(o), b.confirm(o)
    b.send(2, "order.split_requested", number=n, notify_customer=True)
    b.expect.mail(o.email, "backorder_split", n)
    b.expect.restock[sku] += int(short["quantity"])
    b.expect.event("fulfillment.submitted", back.number)
    b.expect.mail(o.email, "backorder_released", back.number)
    b.ship(o, 3)
    b.captured(o, o.total, [Order(n, o.method, o.lines[:2]), back])
    b.expect.paid_backlog.append(back.number)
    b.expect.event("paid_backlog.created", back.number)
    b.send(5, "delivery_note.requested", number=back.number,
           lines=[{"sku": sku, "quantity": short["quantity"]}], reference=f"DN-{n}")  # fmt: skip
    if locked:
        changed = b.send(5, "order.lines_changed", number=back.number,
                         lines=[{**short, "quantity": int(short["quantity"]) + 1}])  # fmt: skip
        b.refused(changed, "lines_locked")
    b.final(n, C, SHIPPED, PAID, download_allowed=True)
    b.final(back.number, C, "processing", PAID, download_allowed=True, lines_locked=True)


def card_split_locked(b: Builder, n: str) -> None:
    card_split(b, n, locked=True)


def account_invoiced_paid(b: Builder, n: str) -> None:
    o = b.order(n, "on_account", b.lines())
    b.place(o), b.confirm(o)
    b.fulfil(o, 2, "processing")
    b.send(2, "invoice.issued", number=n, amount=o.total, currency="EUR", reference=f"INV-{n}")
    b.ship(o, 3)
    b.pay(o, 3, o.total, "on_account", paid=True)
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def account_lines_changed(b: Builder, n: str) -> None:
    o = b.order(n, "on_account", b.lines())
    b.place(o), b.confirm(o)
    o.lines[0] = {**o.lines[0], "quantity": int(o.lines[0]["quantity"]) + 2}
    b.send(2, "order.lines_changed", number=n, lines=o.lines)
    b.send(3, "invoice.issued", number=n, amount=o.total, currency="EUR", reference=f"INV-{n}")
    b.pay(o, 4, o.total, "on_account", paid=True)
    b.final(n, C, "unfulfilled", PAID, download_allowed=True)


def offline_paid(b: Builder, n: str) -> None:
    o = b.order(n, "offline", b.lines())
    b.place(o), b.confirm(o)
    b.pay(o, 2, o.total, "offline", paid=True)
    archived = b.rng.random() < 0.5
    if archived:
        b.send(4, "order.archived", number=n)
    b.final(n, C, "unfulfilled", PAID, download_allowed=True, archived=archived)


def offline_partly_paid(b: Builder, n: str) -> None:
    o = b.order(n, "offline", b.lines())
    b.place(o), b.confirm(o)
    b.pay(o, 2, o.total // 2, "offline", paid=False)
    b.final(n, C, "unfulfilled", "partially_paid")


def accepted_only(b: Builder, n: str) -> None:
    o = b.order(n, "on_account", b.lines())
    b.place(o)
    b.send(1, "order.accepted", number=n, at=b.t0.isoformat())
    b.final(n, "accepted", "unfulfilled", "pending")


def refused_invoice_above_total(b: Builder, n: str) -> None:
    o = b.order(n, "on_account", b.lines())
    b.place(o), b.confirm(o)
    sent = b.send(2, "invoice.issued", number=n, amount=o.total + 100, currency="EUR",
                  reference=f"INV-{n}")  # fmt: skip
    b.refused(sent, "invoice_exceeds_owed")
    b.final(n, C, "unfulfilled", "pending")


def refused_cancel_after_shipment(b: Builder, n: str) -> None:
    o = b.order(n, "stripe_card", b.lines())
    b.place(o), b.confirm(o)
    b.ship(o, 3)
    b.captured(o, o.total, [o])
    sent = b.send(4, "order.cancelled", number=n, reason="too late", notify_customer=True)
    b.refused(sent, "illegal_transition")
    b.final(n, C, SHIPPED, PAID, download_allowed=True)


def refused_split_for_inserts(b: Builder, n: str) -> None:
    o = b.order(n, "on_account", b.lines(line(OOS_INSERT, 1, 0, insert=True)))
    b.place(o), b.confirm(o)
    sent = b.send(2, "order.split_requested", number=n, notify_customer=True)
    b.refused(sent, "only_inserts_out_of_stock")
    b.final(n, C, "unfulfilled", "pending")


ROLES: dict[str, Callable[[Builder, str], None]] = {
    "card_ship": card_ship, "card_ship_fulfil": card_ship_fulfil,
    "card_fulfil_unshipped": card_fulfil_unshipped,
    "card_on_hold_then_ship": card_on_hold_then_ship,
    "card_marked_paid_then_ship": card_marked_paid_then_ship, "card_cancel": card_cancel,
    "card_refund": card_refund, "card_ship_before_placed": card_ship_before_placed,
    "card_split": card_split, "card_split_locked": card_split_locked,
    "account_invoiced_paid": account_invoiced_paid, "account_lines_changed": account_lines_changed,
    "offline_paid": offline_paid, "offline_partly_paid": offline_partly_paid,
    "accepted_only": accepted_only, "refused_invoice_above_total": refused_invoice_above_total,
    "refused_cancel_after_shipment": refused_cancel_after_shipment,
    "refused_split_for_inserts": refused_split_for_inserts,
}  # fmt: skip
WEIGHTS = {
    "card_ship": 18, "card_ship_fulfil": 7, "card_fulfil_unshipped": 4,
    "card_on_hold_then_ship": 4, "card_marked_paid_then_ship": 5, "card_cancel": 5,
    "card_refund": 5, "card_ship_before_placed": 2, "card_split": 6, "card_split_locked": 2,
    "account_invoiced_paid": 12, "account_lines_changed": 5, "offline_paid": 8,
    "offline_partly_paid": 3, "accepted_only": 2, "refused_invoice_above_total": 2,
    "refused_cancel_after_shipment": 2, "refused_split_for_inserts": 2,
}  # fmt: skip


def restock(b: Builder) -> None:
    """Wave 3: each backordered SKU received in exactly the quantity its backorders wait for,
    so every one of them is released whatever order they are considered in."""
    for sku, quantity in sorted(b.expect.restock.items()):
        b.send(3, "inventory.received", sku=sku, quantity=quantity)


def request_paid_backlog(b: Builder) -> None:
    """Wave 4: paid backlog for the paid backorders, 25 to a request."""
    numbers = b.expect.paid_backlog
    for start in range(0, len(numbers), 25):
        b.send(4, "paid_backlog.requested", order_numbers=numbers[start : start + 25],
               dry_run=False)  # fmt: skip


def parked_after(b: Builder) -> list[int]:
    """Envelopes parked once each wave has settled: the confirmations (wave 1 and 2) of orders
    placed only in wave 3."""
    early = sum(1 for e in b.waves[3] if e["type"] == "order.placed")
    return [0, early, early, 0, 0, 0]
