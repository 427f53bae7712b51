"""The money model (issue 19): a hypothesis state machine whose rules are the inbound message
types (plus duplicates, held-back deliveries, job runs, lapsing holds and declines) applied
through the real ingress; after every step every money invariant is checked.

Each example works in a namespace of its own (a prefix on order numbers, customers, SKUs and
manufacturers), so one database serves a whole test; `MoneyModel.bed` must be set first."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tasks.intake.registry import HANDLERS
from tests import factories as f
from tests.fakes.stripe_model import StripeFakeError
from tests.integration.money_bed import MoneyBed
from tests.integration.money_facts import Facts, load
from tests.integration.money_invariants import INVARIANTS, check_facts, owed_by_family

BASE = ("O0", "O1", "O2", "O3")
# Weighted towards the orders placed at the start, so that most messages find their order.
TARGETS = st.sampled_from(("O0", "O2", "O0", "O1", "O2", "O3", "O0-backorder"))
SKUS: dict[str, tuple[int, bool]] = {"DRILL": (2500, False), "BITS": (300, False),
                                     "LEAF": (0, True)}  # fmt: skip
# "run": delivered, then the jobs it staged are run at once, so that short sequences reach
# the payment jobs (a capture needs its shipment, then a run).
VIA = st.sampled_from(("now", "run", "batch", "hold"))
LINES = (
    st.lists(st.tuples(st.sampled_from(tuple(SKUS)), st.integers(1, 3)),
             min_size=1, max_size=3, unique_by=lambda line: line[0])
    .filter(lambda lines: any(not SKUS[sku][1] for sku, _ in lines))
    .map(tuple)
)  # fmt: skip
SENT = Bundle("sent")
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
_examples = itertools.count(1)
Envelope = dict[str, Any]


def _available(type_: str) -> bool:
    """A message type the catalogue handles and has a golden sample for."""
    return type_ in HANDLERS and (f.SAMPLES / type_ / "v1.json").exists()


def number_rule(type_: str, **fields: Any) -> Callable[..., Any]:
    """A rule for a message type whose data is an order number (and fixed `fields`)."""

    def send(self: MoneyModel, number: str, via: str) -> Envelope:
        return self._post(self._envelope(type_, number=self._n(number), **fields), via)

    send.__name__ = send.__qualname__ = type_.replace(".", "_")
    ready = _available(type_)
    return precondition(lambda _: ready)(rule(target=SENT, number=TARGETS, via=VIA)(send))


STORY: dict[str, Callable[[Any, str], object]] = {
    "pay_total": lambda m, n: m.payment_recorded(n, "total", "now"),
    "pay_half": lambda m, n: m.payment_recorded(n, "half", "now"),
    "refund_half_by_hand": lambda m, n: m.payment_recorded(n, "refund_half", "now"),
    "invoice_total": lambda m, n: m.invoice_issued(n, "total", "now"),
    "confirm": lambda m, n: m.order_confirmed(n, "now"),
    "split": lambda m, n: m.order_split_requested(n, "now"),
    "ship": lambda m, n: m.order_shipped(n, "now"),
    "fulfilled": lambda m, n: m.order_fulfillment_changed(n, "fulfilled", "now"),
    "cancel": lambda m, n: m.order_cancelled(n, "now"),
    "refund": lambda m, n: m.order_refund_requested(n, "now"),
    "run_jobs": lambda m, n: m.bed.run_jobs(),
}


class MoneyModel(RuleBasedStateMachine):
    """Messages about a handful of orders, in any order and any number of times."""

    bed: ClassVar[MoneyBed]
    sent = SENT

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"m{next(_examples)}x"
        self.seq = 0
        self.intents: dict[str, str] = {}
        self.held: list[Envelope] = []
        self.batch: list[Envelope] = []
        self.bounds: dict[str, int] = {}
        self.seen_ops: set[int] = set()
        self.facts = Facts()
        self.bed.tally.examples += 1

    # --- helpers -------------------------------------------------------------------------
    def _n(self, label: str) -> str:
        return f"{self.prefix}{label}"

    def _envelope(self, type_: str, **fields: Any) -> Envelope:
        # Producers' clocks move forward: a held-back envelope is older than what passed it.
        self.seq += 1
        at = (T0 + timedelta(seconds=self.seq)).isoformat()
        return f.envelope(type_, occurred_at=at, **fields)

    def _post(self, envelope: Envelope, via: str) -> Envelope:
        if via == "hold":
            self.held.append(envelope)
        elif via == "batch":
            self.batch.append(envelope)
        else:
            self._deliver([envelope])
            if via == "run":
                self.bed.run_jobs()
        return envelope

    def _deliver(self, envelopes: list[Envelope]) -> None:
        batch, self.batch = [*self.batch, *envelopes], []
        self.bed.feed(batch)

    def _order(self, label: str) -> Any:
        number = self._n(label)
        return next((o for o in self.facts.orders.values() if o.number == number), None)

    def _total(self, label: str) -> int:
        order = self._order(label)
        return order.total if order is not None else 1000

    def _intent_of(self, label: str) -> str | None:
        order = self._order(label)
        return order.intent if order is not None and order.intent else self.intents.get(label)

    def _new_intent(self, label: str, total: int, how: str) -> str:
        if how == "reuse" and self.intents:
            return next(iter(self.intents.values()))
        intent = self.bed.fake.create_authorized_intent(total, "eur", decline=how == "decline")
        self.intents.setdefault(label, intent)
        return intent

    # --- setup ---------------------------------------------------------------------------
    @initialize()
    def open_desk(self) -> None:
        self._deliver([self._maker("M0")])

    # Two orders are there from the start, so that most steps act on something.
    @initialize(target=SENT, number=st.sampled_from(("O0", "O1")), lines=LINES,
                method=st.sampled_from(("stripe_card", "stripe_card", "offline")),
                intent=st.sampled_from(("new", "known_expiry", "decline")))  # fmt: skip
    def first_order(
        self, *, number: str, lines: tuple[Any, ...], method: str, intent: str
    ) -> Envelope:
        return self._place(number=number, customer="C0", maker="M0", lines=lines, method=method,
                           intent=intent, via="now")  # fmt: skip

    @initialize(target=SENT, lines=LINES, intent=st.sampled_from(("new", "reuse")))
    def second_order(self, *, lines: tuple[Any, ...], intent: str) -> Envelope:
        return self._place(number="O2", customer="C1", maker="M0", lines=lines,
                           method="stripe_card", intent=intent, via="now")  # fmt: skip

    def _maker(self, label: str) -> Envelope:
        return self._envelope("manufacturer.upserted", id=self._n(label), name=f"OEM {label}")

    # --- the message types ---------------------------------------------------------------
    @rule(target=SENT, maker=st.sampled_from(("M0", "M1")), via=VIA)
    def manufacturer_upserted(self, maker: str, via: str) -> Envelope:
        return self._post(self._maker(maker), via)

    @rule(target=SENT, number=st.sampled_from(BASE), customer=st.sampled_from(("C0", "C1")),
          maker=st.sampled_from(("M0", "M0", "M1")), lines=LINES,
          method=st.sampled_from(("stripe_card", "stripe_card", "on_account", "offline",
                                  "other")),
          intent=st.sampled_from(("new", "known_expiry", "decline", "reuse")), via=VIA)  # fmt: skip
    def order_placed(self, **drawn: Any) -> Envelope:
        return self._place(**drawn)

    def _place(self, *, number: str, customer: str, maker: str, lines: tuple[Any, ...],
               method: str, intent: str, via: str) -> Envelope:  # fmt: skip
        body = self._lines(lines)
        extra: dict[str, Any] = {"stripe_payment_intent_id": None}
        if method == "stripe_card":
            total = sum(line["quantity"] * line["unit_price"] for line in body)
            pi_id = extra["stripe_payment_intent_id"] = self._new_intent(number, total, intent)
            if intent == "known_expiry":
                card = self.bed.fake.intent(pi_id)["latest_charge"]["payment_method_details"]
                expiry = datetime.fromtimestamp(card["card"]["capture_before"], UTC)
                extra["capture_before"] = expiry.isoformat()
        who = {"id": self._n(customer), "email": f"{customer.lower()}@example.com",
               "name": f"Customer {customer}"}  # fmt: skip
        return self._post(self._envelope(
            "order.placed", number=self._n(number), customer=who, manufacturer_id=self._n(maker),
            lines=body, payment_method=method, **extra), via)  # fmt: skip

    def _lines(self, lines: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
        return [{"sku": self._n(sku), "quantity": quantity, "unit_price": SKUS[sku][0],
                 "is_insert": SKUS[sku][1]} for sku, quantity in lines]  # fmt: skip

    @rule(target=SENT, number=TARGETS, lines=LINES, via=VIA)
    def order_lines_changed(self, number: str, lines: tuple[Any, ...], via: str) -> Envelope:
        envelope = self._envelope("order.lines_changed", number=self._n(number),
                                  lines=self._lines(lines))  # fmt: skip
        return self._post(envelope, via)

    @rule(target=SENT, sku=st.sampled_from(tuple(SKUS)), quantity=st.integers(0, 4), via=VIA)
    def inventory_set(self, sku: str, quantity: int, via: str) -> Envelope:
        return self._post(self._envelope("inventory.set", sku=self._n(sku), quantity=quantity), via)

    @rule(target=SENT, sku=st.sampled_from(tuple(SKUS)), quantity=st.integers(1, 3), via=VIA)
    def inventory_received(self, sku: str, quantity: int, via: str) -> Envelope:
        envelope = self._envelope("inventory.received", sku=self._n(sku), quantity=quantity)
        return self._post(envelope, via)

    @rule(target=SENT, number=TARGETS, share=st.sampled_from(("total", "half", "over")), via=VIA)
    def invoice_issued(self, number: str, share: str, via: str) -> Envelope:
        total = self._total(number)
        amount = {"total": total, "half": total // 2, "over": total + 100}[share]
        envelope = self._envelope("invoice.issued", number=self._n(number), amount=amount)
        return self._post(envelope, via)

    @rule(target=SENT, number=TARGETS, via=VIA,
          share=st.sampled_from(("total", "half", "refund_half", "refund_total")))  # fmt: skip
    def payment_recorded(self, number: str, share: str, via: str) -> Envelope:
        total = self._total(number)
        amount = {"total": total, "half": total // 2, "refund_half": -(total // 2),
                  "refund_total": -total}[share] or 100  # fmt: skip
        envelope = self._envelope("payment.recorded", number=self._n(number), amount=amount)
        return self._post(envelope, via)

    @rule(target=SENT, number=TARGETS, via=VIA, status=st.sampled_from(
        ("processing", "on_hold", "backordered", "fulfilled", "unfulfilled")))  # fmt: skip
    def order_fulfillment_changed(self, number: str, status: str, via: str) -> Envelope:
        envelope = self._envelope("order.fulfillment_changed", number=self._n(number),
                                  status=status)  # fmt: skip
        return self._post(envelope, via)

    @rule(
        target=SENT,
        number=TARGETS,
        kind=st.sampled_from(
            ("payment_intent.succeeded", "payment_intent.canceled", "charge.refunded")
        ),
        via=VIA,
    )
    def stripe_event(self, number: str, kind: str, via: str) -> Envelope | None:
        event = self._event(number, kind)
        return self._post(event, via) if event is not None else None

    def _event(self, label: str, kind: str) -> Envelope | None:
        intent = self._intent_of(label)
        if intent is None:
            return None
        obj = {"id": intent, "object": "payment_intent", "metadata": {}}
        charge = self.bed.fake.intent(intent)["latest_charge"]
        if kind.startswith("charge.") and charge is not None:
            obj = {"id": charge["id"], "object": "charge", "metadata": {}}
        self.seq += 1
        return self._envelope("stripe.event", id=f"evt_{self.prefix}{self.seq}", type=kind,
                              created=self.bed.fake.clock.now(), data={"object": obj})  # fmt: skip

    @rule(target=SENT, numbers=st.lists(TARGETS, min_size=1, max_size=2, unique=True),
          dry_run=st.booleans(), via=VIA)  # fmt: skip
    def paid_backlog_requested(self, numbers: list[str], dry_run: bool, via: str) -> Envelope:
        envelope = self._envelope("paid_backlog.requested", dry_run=dry_run,
                                  order_numbers=[self._n(n) for n in numbers])  # fmt: skip
        return self._post(envelope, via)

    @rule(target=SENT, number=TARGETS, sku=st.sampled_from(tuple(SKUS)),
          quantity=st.integers(1, 3), via=VIA)  # fmt: skip
    def delivery_note_requested(self, number: str, sku: str, quantity: int, via: str) -> Envelope:
        lines = [{"sku": self._n(sku), "quantity": quantity}]
        envelope = self._envelope("delivery_note.requested", number=self._n(number), lines=lines)
        return self._post(envelope, via)

    # One line per message type whose data is just the number (the future
    # `order.capture_requested` runs as soon as the catalogue has it).
    order_accepted = number_rule("order.accepted")
    order_confirmed = number_rule("order.confirmed")
    order_archived = number_rule("order.archived")
    order_split_requested = number_rule("order.split_requested")
    order_shipped = number_rule("order.shipped")
    order_cancelled = number_rule("order.cancelled")
    order_refund_requested = number_rule("order.refund_requested")
    order_capture_requested = number_rule("order.capture_requested")

    # --- what else happens ---------------------------------------------------------------
    # Several desk actions on one order in a row, then its jobs: where paths meet on one order
    # is reached in one step, not left to the odds of drawing each action for the same order.
    @rule(number=TARGETS, steps=st.lists(st.sampled_from(tuple(STORY)), min_size=2, max_size=4))
    def desk_story(self, number: str, steps: list[str]) -> None:
        for step in steps:
            STORY[step](self, number)
            self._observe()  # what each capture's family owed is learnt step by step (I3)
        self.bed.run_jobs()

    @rule(envelope=SENT)
    def redeliver(self, envelope: Envelope | None) -> None:
        """The same envelope again (at-least-once delivery)."""
        if envelope is not None:
            self._deliver([envelope])

    @precondition(lambda self: bool(self.held))
    @rule(which=st.sampled_from(("oldest", "newest", "all_reversed")))
    def deliver_held(self, which: str) -> None:
        """Deliver what was held back, after what passed it."""
        if which == "all_reversed":
            taken, self.held = self.held[::-1], []
        else:
            taken = [self.held.pop(0 if which == "oldest" else -1)]
        self._deliver(taken)

    @rule()
    def run_jobs(self) -> None:
        self.bed.run_jobs()

    @rule(days=st.sampled_from((1, 3, 8)))
    def lapse(self, days: int) -> None:
        """Time passes (holds lapse after 7 days at the fake and in the database)."""
        self.bed.fake.clock.advance(days * 86_400)

    @rule(number=TARGETS)
    def decline_next_capture(self, number: str) -> None:
        intent = self._intent_of(number)
        if intent is not None and self.bed.fake.intent(intent)["status"] == "requires_capture":
            self.bed.fake.decline_captures(intent)

    @rule(target=SENT, number=TARGETS, action=st.sampled_from(("cancel", "refund_half")))
    def stripe_dashboard(self, number: str, action: str) -> Envelope | None:
        """Someone acts in Stripe's dashboard; Stripe's webhook event follows."""
        intent = self._intent_of(number)
        if intent is None:
            return None
        ledger, amount = self.bed.fake.ledger, max(1, self._total(number) // 2)
        try:
            if action == "cancel":
                ledger.cancel_intent(intent, {}, None)
            else:
                ledger.create_refund({"payment_intent": intent, "amount": str(amount)}, None)
        except StripeFakeError:
            return None  # Stripe refused it: nothing happened, no event
        event = self._event(number, "payment_intent.canceled" if action == "cancel"
                            else "charge.refunded")  # fmt: skip
        return self._post(event, "now") if event is not None else None

    # --- the invariants ------------------------------------------------------------------
    @invariant()
    def money_invariants_hold(self) -> None:
        facts = self._observe()
        self.bed.tally.steps += 1
        self.bed.tally.checks += INVARIANTS
        found = check_facts(facts, self.bounds)
        assert not found, "\n".join(found)

    def _observe(self) -> Facts:
        """Read the example's facts and learn the bounds of any capture requested since."""
        with self.bed.db.sessions() as session:
            facts = load(session, self.bed.fake, self.prefix)
        self._learn_bounds(facts)
        self.facts = facts
        return facts

    def _learn_bounds(self, post: Facts) -> None:
        """For each capture requested in this step: what its family owed just before (I3)."""
        pre, since = self.facts, self.facts.last_payment_id()

        def manual(order_id: int) -> int:
            # Only refunds of this step may have preceded the request: count those, not payments.
            refunds = sum(p.amount for p in post.payments if p.order_id == order_id
                          and p.source == "manual" and p.id > since and p.amount < 0)  # fmt: skip
            return pre.manual_paid(order_id) + refunds

        before, after = owed_by_family(pre, manual), owed_by_family(post, manual)
        for op in post.operations:
            if op.kind != "capture" or op.id in self.seen_ops:
                continue
            self.seen_ops.add(op.id)
            intent = post.orders[op.order_id].intent
            if intent is not None and intent not in self.bounds:
                self.bounds[intent] = max(before.get(intent, 0), after.get(intent, 0))
