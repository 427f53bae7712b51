"""Ledger messages: `invoice.issued` and `payment.recorded` (manual payments and refunds)."""

from __future__ import annotations

from models.db.commerce import Invoice, Order, Payment
from models.db.ledger import Refreshed, refresh
from models.db.orders import record
from models.db.uow import UnitOfWork
from models.domain.errors import PermanentError
from models.domain.notifications import payment_template
from models.domain.orders import check_billable
from tasks.intake.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.ledger import InvoiceIssuedV1, PaymentRecordedV1
from tasks.notifications import staging as notify


def _check_currency(order: Order, currency: str | None) -> None:
    # Amounts in another currency are never converted or summed: refuse them.
    if currency is not None and currency != order.currency:
        raise PermanentError(
            "currency_mismatch", f"order {order.number} is in {order.currency}, not {currency}"
        )


def _notify(
    uow: UnitOfWork, order: Order, change: Refreshed, message: DecodedMessage, note: str | None
) -> None:
    template = payment_template(change.before, change.after)
    if template is not None:
        notify.stage(uow, order, template, str(message.envelope.id), {"note": note})


def _status_note(change: Refreshed) -> str:
    if change.changed:
        return f"; payment {change.before.value} -> {change.after.value}"
    return f"; payment stays {change.after.value}"


def issue_invoice(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Add an invoice; the amount due becomes the invoiced amount."""
    data = message.data_as(InvoiceIssuedV1)
    order = require_order(uow, data.number)
    _check_currency(order, data.currency)
    check_billable(total=order.total, invoiced=order.invoiced, more=data.amount)
    now = uow.clock()
    uow.session.add(
        Invoice(
            order_id=order.id,
            amount=data.amount,
            issued_at=data.issued_at or message.envelope.occurred_at,
            envelope_id=str(message.envelope.id),
        )
    )
    change = refresh(uow.session, order)
    order.updated_at = now
    _notify(uow, order, change, message, None)
    record(
        uow.session,
        order,
        now,
        "invoice.issued",
        f"invoiced {data.amount} {order.currency}{_status_note(change)}",
        details={"reference": data.reference},
        envelope_id=str(message.envelope.id),
    )


def record_payment(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Add a manual payment (negative: money refunded outside Stripe) and re-derive statuses."""
    data = message.data_as(PaymentRecordedV1)
    order = require_order(uow, data.number)
    _check_currency(order, data.currency)
    now = uow.clock()
    uow.session.add(
        Payment(
            order_id=order.id,
            amount=data.amount,
            currency=order.currency,
            method=data.method.value,
            source="manual",
            reference=data.reference,
            at=data.at,
            note=data.note,
        )
    )
    change = refresh(uow.session, order)
    order.updated_at = now
    if data.notify_customer:
        _notify(uow, order, change, message, data.note)
    kind = "refund" if data.amount < 0 else "payment"
    record(
        uow.session,
        order,
        now,
        "payment.recorded",
        f"{kind} {data.amount} {order.currency} by {data.method.value}{_status_note(change)}",
        details={"reference": data.reference, "note": data.note},
        envelope_id=str(message.envelope.id),
    )
