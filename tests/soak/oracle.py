"""What a soak day must lead to, and the judgement of what was observed against it.

Effects are counted where they land: captures, releases and refunds at the Stripe fake (per
PaymentIntent, with amounts), emails at the SMTP sink (per recipient and subject), events on
the egress stream (per type and key), quarantine records (per reason); and every order's final
statuses in the database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# The subjects of workers/templates/*.subject.txt, for one order number.
SUBJECTS = {
    "order_confirmed": "Order {n} confirmed",
    "fulfillment_processing": "Order {n} is being prepared",
    "fulfillment_on_hold": "Order {n} is on hold",
    "fulfillment_shipped": "Order {n} has shipped",
    "fulfillment_cancelled": "Order {n} was cancelled",
    "fulfillment_fulfilled": "Order {n} is complete",
    "payment_paid": "Payment received for order {n}",
    "payment_pending": "Payment pending for order {n}",
    "payment_refunded": "Refund for order {n}",
    "backorder_split": "Part of order {n} is on backorder",
    "backorder_released": "Backorder {n} is on its way to you",
}


@dataclass(frozen=True)
class Final:
    """An order's end state."""

    confirmation: str
    fulfillment: str
    payment: str
    download_allowed: bool = False
    archived: bool = False
    lines_locked: bool = False


@dataclass
class Expectation:
    """Expected effects, each once (a Counter value above 1 never occurs by construction)."""

    orders: dict[str, Final] = field(default_factory=dict)
    intents: dict[str, str] = field(default_factory=dict)  # order number -> PaymentIntent
    stripe: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # kind, pi, amount
    emails: Counter[tuple[str, str]] = field(default_factory=Counter)
    egress: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    restock: Counter[str] = field(default_factory=Counter)  # SKU -> quantity backordered
    paid_backlog: list[str] = field(default_factory=list)  # orders to get paid backlog

    def mail(self, recipient: str, template: str, number: str) -> None:
        self.emails[(recipient, SUBJECTS[template].format(n=number))] += 1

    def capture(self, pi: str, amount: int) -> None:
        self.stripe[("capture", pi, amount)] += 1

    def release(self, pi: str, amount: int) -> None:
        self.stripe[("cancel", pi, amount)] += 1

    def refund(self, pi: str, amount: int) -> None:
        self.stripe[("refund", pi, amount)] += 1

    def event(self, type_: str, key: str) -> None:
        self.egress[(type_, key)] += 1


@dataclass
class Observed:
    """What the soak saw at the fakes, on the egress stream and in the database."""

    orders: dict[str, Final]
    stripe: Counter[tuple[str, str, int]]
    emails: Counter[tuple[str, str]]  # one per distinct Message-ID
    resent: int  # the same Message-ID received again (a resend after a SIGKILL)
    egress: Counter[tuple[str, str]]
    quarantined: Counter[str]
    delivery_limit: int
    deadlocks: int


@dataclass(frozen=True)
class Verdict:
    """The soak's line, and the differences behind it."""

    attempted: int
    effects: int
    missing: int
    duplicated: int
    unexpected: int
    deadlocks: int
    resent: int
    delivery_limit: int
    details: list[str]

    def line(self) -> str:
        return (f"attempted={self.attempted} effects={self.effects} missing={self.missing} "
                f"duplicated={self.duplicated} unexpected={self.unexpected} "
                f"deadlocks={self.deadlocks}")  # fmt: skip

    def resent_line(self) -> str:
        return f"emails resent with the same Message-ID: resent={self.resent}"


def _compare(name: str, want: Counter[object], got: Counter[object], out: list[str]) -> list[int]:
    """[matched, missing, duplicated, unexpected] for one kind of effect."""
    tally = [0, 0, 0, 0]
    for key, n in want.items():
        seen = got.get(key, 0)
        tally[0] += min(n, seen)
        tally[1] += max(n - seen, 0)
        tally[2] += max(seen - n, 0)
        if seen != n:
            out.append(f"{name} {key}: expected {n}, seen {seen}")
    for key, seen in got.items():
        if key not in want:
            tally[3] += seen
            out.append(f"{name} {key}: not expected, seen {seen}")
    return tally


def judge(want: Expectation, got: Observed) -> Verdict:
    """Every expected effect seen exactly once, nothing else, each order in its end state."""
    details: list[str] = []
    tallies = [
        _compare("stripe", Counter(want.stripe), Counter(got.stripe), details),
        _compare("email", Counter(want.emails), Counter(got.emails), details),
        _compare("egress", Counter(want.egress), Counter(got.egress), details),
        _compare("quarantine", Counter(want.quarantined), Counter(got.quarantined), details),
    ]
    wrong = 0
    for number, final in want.orders.items():
        actual = got.orders.get(number)
        if actual != final:
            wrong += 1
            details.append(f"order {number}: expected {final}, is {actual}")
    extra = sorted(set(got.orders) - set(want.orders))
    details += [f"order {n}: not expected, is {got.orders[n]}" for n in extra]
    attempted = sum(want.stripe.values()) + sum(want.emails.values()) + sum(
        want.egress.values()) + sum(want.quarantined.values()) + len(want.orders)  # fmt: skip
    matched, missing, duplicated, unexpected = (sum(t[i] for t in tallies) for i in range(4))
    return Verdict(
        attempted=attempted, effects=matched + len(want.orders) - wrong,
        missing=missing + wrong, duplicated=duplicated, unexpected=unexpected + len(extra),
        deadlocks=got.deadlocks, resent=got.resent, delivery_limit=got.delivery_limit,
        details=details,
    )  # fmt: skip
