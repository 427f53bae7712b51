"""The money invariants of SPEC §4 as checks over the database and the Stripe fake: each returns
the violations it finds, every string starting with the invariant's name (I1 ... I12).

`check_all(session, fake, prefix, bounds)` runs them all on one namespace; `bounds` is what
each PaymentIntent's family owed when its capture was requested (I3 needs that history; see
`owed_by_family`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from sqlalchemy.orm import Session

from models.domain.ledger import HoldState, download_allowed, payment_status, totals
from models.domain.statuses import PaymentStatus
from tests.fakes.stripe_server import StripeFake
from tests.integration.money_facts import Facts, OrderFacts, load

INVARIANTS = 12
CANCELLED, GONE = "cancelled", ("shipped", "fulfilled")
CARD = "stripe_card"


def _names(members: list[OrderFacts]) -> str:
    return "/".join(m.number for m in members)


def _sums(facts: Facts, kind: str) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for effect in facts.effects:
        if effect.kind == kind:
            found[effect.pi_id] += effect.amount
    return found


def i1_one_capture_within_authorization(facts: Facts) -> list[str]:
    """At most one successful capture per PaymentIntent, never above the authorized amount."""
    found = []
    authorized = {e.pi_id: e.amount for e in facts.effects if e.kind == "create"}
    for intent, members in facts.families().items():
        amounts = [e.amount for e in facts.effects if e.kind == "capture" and e.pi_id == intent]
        if len(amounts) > 1:
            found.append(f"I1 {intent} ({_names(members)}) captured {len(amounts)} times: "
                         f"{amounts}")  # fmt: skip
        if intent in authorized and sum(amounts) > authorized[intent]:
            found.append(f"I1 {intent} ({_names(members)}) captured {sum(amounts)} > "
                         f"authorized {authorized[intent]}")  # fmt: skip
    return found


def i2_one_family_per_intent(facts: Facts) -> list[str]:
    """Orders sharing a PaymentIntent all descend from one root."""
    found = []
    for intent, members in facts.families().items():
        roots = sorted({facts.root_of(m).number for m in members})
        if len(roots) > 1:
            found.append(f"I2 {intent} is shared by {len(roots)} families: {roots}")
    return found


def owed_by_family(facts: Facts, manual: Callable[[int], int]) -> dict[str, int]:
    """Per PaymentIntent: what its open members still owe, Σ max(0, total - manual paid)."""
    return {
        intent: sum(max(0, m.total - manual(m.id)) for m in members if m.fulfillment != CANCELLED)
        for intent, members in facts.families().items()
    }


def i3_paid_orders_never_captured(facts: Facts, bounds: dict[str, int]) -> list[str]:
    """What Stripe captured never exceeds what the family owed when the capture was requested."""
    found = []
    families = facts.families()
    for intent, captured in _sums(facts, "capture").items():
        bound = bounds.get(intent)
        if bound is not None and captured > bound:
            found.append(f"I3 {intent} ({_names(families[intent])}) captured {captured} but the "
                         f"family owed {bound} when the capture was requested")  # fmt: skip
    return found


def _paid_in_full(members: list[OrderFacts]) -> bool:
    open_members = [m for m in members if m.fulfillment != CANCELLED]
    return sum(m.paid for m in members) >= sum(m.total for m in open_members)


def i4_shipped_card_orders_are_captured(facts: Facts) -> list[str]:
    """A shipped or fulfilled card order has its family's capture requested, or is paid in full
    otherwise, or has no live hold."""
    found = []
    families = facts.families()
    captured = {op.order_id for op in facts.operations if op.kind == "capture"}
    for order in facts.orders.values():
        if order.method != CARD or order.intent is None or order.fulfillment not in GONE:
            continue
        members = families[order.intent]
        if {m.id for m in members} & captured or _paid_in_full(members):
            continue
        if order.hold_state == HoldState.HELD.value:
            found.append(f"I4 {order.number} is {order.fulfillment} with its hold still held, "
                         f"no capture requested (paid {order.paid} of {order.total})")  # fmt: skip
    return found


def i5_invoiced_within_owed(facts: Facts) -> list[str]:
    """The invoices of an order never add up to more than its total."""
    return [
        f"I5 {o.number} invoiced {sum(facts.invoices[o.id])} > total {o.total}"
        for o in facts.orders.values()
        if sum(facts.invoices.get(o.id, [])) > o.total
    ]


def i6_undelivered_in_exactly_one_backlog(facts: Facts) -> list[str]:
    """For a confirmed open order, per SKU: backlog remaining = ordered - delivered; and never a
    regular and a paid row open for the same line."""
    found = []
    remaining: dict[tuple[int, str], int] = defaultdict(int)
    kinds: dict[tuple[int, str], set[str]] = defaultdict(set)
    for row in facts.backlog:
        remaining[(row.order_id, row.sku)] += row.remaining
        if row.remaining > 0:
            kinds[(row.order_id, row.sku)].add(row.kind)
    for (order_id, sku), open_kinds in sorted(kinds.items()):
        if len(open_kinds) > 1:
            found.append(f"I6 {facts.orders[order_id].number} {sku} is open in both a regular "
                         f"and a paid backlog")  # fmt: skip
    for order in facts.orders.values():
        if order.confirmation != "confirmed" or order.fulfillment in (*GONE, CANCELLED):
            continue
        lines = facts.lines.get(order.id, {})
        skus = set(lines) | {sku for (o, sku) in remaining if o == order.id}
        for sku in sorted(skus):
            want = lines.get(sku, 0) - facts.delivered.get((order.id, sku), 0)
            held = remaining.get((order.id, sku), 0)
            if held != want:
                found.append(f"I6 {order.number} {sku}: backlog holds {held}, undelivered {want}")
    return found


def i7_shipped_goods_not_in_backlog(facts: Facts) -> list[str]:
    """A shipped or fulfilled order has no undelivered backlog."""
    open_rows: Counter[int] = Counter()
    for row in facts.backlog:
        open_rows[row.order_id] += row.remaining
    return [
        f"I7 {o.number} is {o.fulfillment} with {open_rows[o.id]} units still in backlog"
        for o in facts.orders.values()
        if o.fulfillment in GONE and open_rows[o.id] > 0
    ]


def i8_payment_status_follows_the_ledger(facts: Facts) -> list[str]:
    """Stored status and figures are SPEC §1.4's function of invoices, payments and hold."""
    found = []
    for order in facts.orders.values():
        amounts = [p.amount for p in facts.payments if p.order_id == order.id]
        ledger = totals(order.total, facts.invoices.get(order.id, []), amounts)
        status = payment_status(ledger, HoldState(order.hold_state))
        want = (status.value, ledger.invoiced, ledger.paid, ledger.outstanding)
        have = (order.payment_status, order.invoiced, order.paid, order.outstanding)
        if want != have:
            found.append(f"I8 {order.number} stores (status, invoiced, paid, outstanding)="
                         f"{have}, the ledger gives {want} (hold {order.hold_state})")  # fmt: skip
    return found


def i9_download_only_when_paid(facts: Facts) -> list[str]:
    """`download_allowed` only when the payment status is paid or overpaid."""
    return [
        f"I9 {o.number} allows downloads while {o.payment_status}"
        for o in facts.orders.values()
        if o.download_allowed and not download_allowed(PaymentStatus(o.payment_status))
    ]


def _acted_on(members: list[OrderFacts]) -> bool:
    """Someone dealt with the family since: paid in full, released, refunded or cancelled."""
    refunded = {PaymentStatus.REFUNDED.value, PaymentStatus.PARTIALLY_REFUNDED.value}
    return (
        (_paid_in_full(members) and sum(m.paid for m in members) > 0)
        or any(m.hold_state == HoldState.RELEASED.value for m in members)
        or any(m.payment_status in refunded for m in members)
        or all(m.fulfillment == CANCELLED for m in members)
    )  # fmt: skip


def i10_failed_capture_stays_visible(facts: Facts) -> list[str]:
    """A failed capture not acted on since shows on the family's root order."""
    found = []
    for members in facts.families().values():
        ids = {m.id for m in members}
        captures = [op for op in facts.operations if op.kind == "capture" and op.order_id in ids]
        if not captures or captures[-1].status != "failed" or _acted_on(members):
            continue
        root, op = members[0], captures[-1]
        if root.capture_failure is None:
            why = "" if facts.has_failure_column else " (no capture_failure column)"
            found.append(f"I10 {root.number} capture failed ({op.last_error}) and nothing on "
                         f"the order shows it{why}")  # fmt: skip
    return found


def i11_refunds_within_captures(facts: Facts) -> list[str]:
    """Refunds never exceed captures: per PaymentIntent at Stripe, per order in the ledger."""
    families = facts.families()
    captured, refunded = _sums(facts, "capture"), _sums(facts, "refund")
    found = [
        f"I11 {intent} ({_names(families[intent])}) refunded {amount} > captured "
        f"{captured.get(intent, 0)} at Stripe"
        for intent, amount in refunded.items()
        if amount > captured.get(intent, 0)
    ]
    ins: Counter[int] = Counter()
    outs: Counter[int] = Counter()
    for p in facts.payments:
        if p.source == "stripe":
            (ins if p.amount > 0 else outs)[p.order_id] += abs(p.amount)
    for order_id, amount in sorted(outs.items()):
        if amount > ins[order_id]:
            found.append(f"I11 {facts.orders[order_id].number} has stripe refunds {amount} > "
                         f"stripe captures {ins[order_id]} in the ledger")  # fmt: skip
    return found


def i12_one_notification_and_one_capture(facts: Facts) -> list[str]:
    """At most one notification per (order, template, cause); one capture per family."""
    found = []
    causes: Counter[tuple[int, str, str]] = Counter()
    for order_id, key, template in facts.notifications:
        cause = key.removeprefix(f"order:{order_id}:").split(f":{template}")[0]
        causes[(order_id, template, cause)] += 1
    for (order_id, template, cause), count in sorted(causes.items()):
        if count > 1:
            found.append(f"I12 {facts.orders[order_id].number} has {count} {template} "
                         f"notifications for {cause}")  # fmt: skip
    for intent, members in facts.families().items():
        ids = {m.id for m in members}
        keys = [op.key for op in facts.operations if op.kind == "capture" and op.order_id in ids]
        if len(keys) > 1:
            found.append(f"I12 {intent} ({_names(members)}) has {len(keys)} capture "
                         f"operations: {keys}")  # fmt: skip
    return found


CHECKS: tuple[Callable[[Facts], list[str]], ...] = (
    i1_one_capture_within_authorization, i2_one_family_per_intent,
    i4_shipped_card_orders_are_captured, i5_invoiced_within_owed,
    i6_undelivered_in_exactly_one_backlog, i7_shipped_goods_not_in_backlog,
    i8_payment_status_follows_the_ledger, i9_download_only_when_paid,
    i10_failed_capture_stays_visible, i11_refunds_within_captures,
    i12_one_notification_and_one_capture,
)  # fmt: skip


def check_facts(facts: Facts, bounds: dict[str, int]) -> list[str]:
    """Every invariant over facts already read."""
    found = i3_paid_orders_never_captured(facts, bounds)
    for check in CHECKS:
        found += check(facts)
    return sorted(found)


def check_all(session: Session, fake: StripeFake, prefix: str, bounds: dict[str, int]) -> list[str]:
    """Every invariant over the orders numbered `prefix…`, as the database and fake show them."""
    return check_facts(load(session, fake, prefix), bounds)
