"""The demo's report: what was applied, what was quarantined and why, and the job round trip."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.db.status_queries import counts_by_reason
from models.db.tables import Inventory, Manufacturer, Order, ParkedMessage, QuarantinedMessage
from workers.demo.smtp_sink import ReceivedMail

EXPECTED_REASONS = {
    "not_json": 1,
    "signature_invalid": 1,
    "signature_missing": 1,
    "unknown_version": 1,
}


EXPECTED_EMAILS = 7
CUSTOMER_DOMAIN = "@example.com"


@dataclass(frozen=True)
class ProbeReport:
    """How the outbox round trip went."""

    staged: int
    done: int
    effects: int
    duplicated: int
    seconds: float

    @property
    def ok(self) -> bool:
        """Every job done, every effect once."""
        return self.done == self.staged == self.effects and self.duplicated == 0


def _published(console: Console, messages: list[tuple[str, bytes]]) -> None:
    table = Table("message", "sent", title="Published to orderflow:ingress (one XADD each)")
    for label, count in Counter(label for label, _ in messages).items():
        table.add_row(label, str(count))
    console.print(table)


def _orders(console: Console, session: Session) -> None:
    table = Table(
        "order", "OEM", "payment", "confirmation", "due (UTC)", "total", title="Orders as stored"
    )
    for order in session.scalars(select(Order).order_by(Order.number)):
        deadline = order.confirmation_deadline
        due = deadline.strftime("%a %H:%M") if deadline else "-"
        total = f"{order.total / 100:.2f} {order.currency}"
        number = order.number + (" (archived)" if order.archived else "")
        table.add_row(
            number,
            order.manufacturer_id,
            order.payment_status,
            order.confirmation_status,
            due,
            total,
        )
    console.print(table)


def _quarantine(console: Console, session: Session) -> None:
    table = Table("reason", "type", "detail", title="Quarantined (kept, replayable)")
    for row in session.scalars(select(QuarantinedMessage).order_by(QuarantinedMessage.id)):
        table.add_row(row.reason, row.type or "-", row.detail)
    console.print(table)
    parked = Table("waits for", "type", "until", title="Parked (applied when it arrives)")
    for item in session.scalars(select(ParkedMessage).order_by(ParkedMessage.id)):
        parked.add_row(item.awaits, item.type, item.expires_at.isoformat(timespec="minutes"))
    console.print(parked)


def print_report(
    console: Console, session: Session, messages: list[tuple[str, bytes]], probes: ProbeReport
) -> bool:
    """Print everything; True when the outcome is exactly what the scenario should give."""
    _published(console, messages)
    _orders(console, session)
    _quarantine(console, session)
    jobs = Table(
        "staged",
        "done",
        "effects",
        "duplicated",
        "seconds",
        title="Outbox jobs through real worker and scheduler processes",
    )
    jobs.add_row(
        str(probes.staged),
        str(probes.done),
        str(probes.effects),
        str(probes.duplicated),
        f"{probes.seconds:.2f}",
    )
    console.print(jobs)
    orders = session.scalar(select(func.count()).select_from(Order)) or 0
    early = session.scalars(select(Order).where(Order.number == "DEMO-1011")).one_or_none()
    manufacturers = session.scalar(select(func.count()).select_from(Manufacturer)) or 0
    stock = session.get(Inventory, "DRILL-1")
    waiting = session.scalars(select(ParkedMessage.awaits)).all()
    return (
        orders == 12
        and manufacturers == 2
        and early is not None
        and early.confirmation_status == "confirmed"
        and stock is not None
        and stock.on_hand == 40
        and counts_by_reason(session) == EXPECTED_REASONS
        and list(waiting) == ["manufacturer:oem-nobody"]
        and probes.ok
    )


def customer_mail(mails: Sequence[ReceivedMail]) -> list[ReceivedMail]:
    """The customers' emails. Manufacturers and the desk may also get deadline messages,
    how many depends on the weekday the demo runs (deadlines count business days)."""
    return [m for m in mails if m.rcpt_tos[0].endswith(CUSTOMER_DOMAIN)]


def print_mail(console: Console, mails: Sequence[ReceivedMail]) -> bool:
    """What the local SMTP server received; True when the customers got exactly the expected
    mail and nobody got a message twice."""
    table = Table("to", "subject", "first line", title="Emails received by the local SMTP sink")
    for item in mails:
        first = next((line for line in item.text.splitlines()[1:] if line.strip()), "")
        table.add_row(item.rcpt_tos[0], item.subject or "", first[:60])
    console.print(table)
    unique = len({m.message_id for m in mails}) == len(mails)
    return len(customer_mail(mails)) == EXPECTED_EMAILS and unique
