"""Order messages: placed, accepted, confirmed, lines changed, archived."""

from __future__ import annotations

from datetime import date

from models.db.commerce import Customer, Manufacturer, Order
from models.db.orders import find_order, record, replace_lines
from models.db.uow import UnitOfWork
from models.domain.calendar import BusinessCalendar, confirmation_deadline
from models.domain.confirmation import advance
from models.domain.errors import PermanentError
from models.domain.ledger import payment_status, totals
from models.domain.notifications import ORDER_CONFIRMED
from models.domain.orders import (
    LineSpec,
    check_lines_may_change,
    initial_hold,
    order_total,
)
from models.domain.statuses import ConfirmationStatus, FulfillmentStatus, PaymentMethod
from tasks import notify
from tasks.handlers.base import require_order
from tasks.messages.catalogue import DecodedMessage
from tasks.messages.v1.fulfillment import OrderArchivedV1
from tasks.messages.v1.orders import (
    OrderAcceptedV1,
    OrderConfirmedV1,
    OrderLinesChangedV1,
    OrderLineV1,
    OrderPlacedV1,
)


def _specs(lines: list[OrderLineV1]) -> list[LineSpec]:
    return [LineSpec(x.sku, x.quantity, x.unit_price, x.is_insert) for x in lines]


def calendar_of(manufacturer: Manufacturer) -> BusinessCalendar:
    """The manufacturer's business calendar as the domain sees it."""
    return BusinessCalendar(
        timezone=manufacturer.timezone,
        weekend_days=frozenset(manufacturer.weekend_days),
        holiday_country=manufacturer.holiday_country,
        holiday_subdivision=manufacturer.holiday_subdivision,
        closure_days=frozenset(date.fromisoformat(d) for d in manufacturer.closure_days),
        cutoff_hour=manufacturer.cutoff_hour,
    )


def place_order(uow: UnitOfWork, message: DecodedMessage) -> str:
    """Store the order and its deadline; refuse a number already taken."""
    data = message.data
    assert isinstance(data, OrderPlacedV1)
    session, now = uow.session, uow.clock()
    if find_order(session, data.number) is not None:
        raise PermanentError("order_exists", f"order {data.number} was placed before")
    manufacturer = session.get(Manufacturer, data.manufacturer_id)
    if manufacturer is None:
        raise PermanentError("unknown_manufacturer", f"no manufacturer {data.manufacturer_id}")
    customer = session.get(Customer, data.customer.id, with_for_update=True)
    if customer is None:
        customer = Customer(id=data.customer.id)
        session.add(customer)
    customer.email, customer.name = data.customer.email, data.customer.name
    lines = _specs(data.lines)
    method = PaymentMethod(data.payment_method.value)
    hold = initial_hold(method)
    deadline = confirmation_deadline(
        data.placed_at, calendar_of(manufacturer), manufacturer.sla_business_days
    )
    order = Order(
        number=data.number,
        customer_id=customer.id,
        manufacturer_id=manufacturer.id,
        currency=data.currency,
        total=order_total(lines),
        payment_method=method.value,
        stripe_payment_intent_id=data.stripe_payment_intent_id,
        placed_at=data.placed_at,
        confirmation_status=ConfirmationStatus.NEW.value,
        confirmation_deadline=deadline,
        fulfillment_status=FulfillmentStatus.UNFULFILLED.value,
        payment_status=payment_status(totals(order_total(lines), [], []), hold).value,
        hold_state=hold.value,
        outstanding_balance=0,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    replace_lines(session, order.id, lines)
    record(
        session,
        order,
        now,
        "order.placed",
        f"placed with {len(lines)} lines, total {order.total} {order.currency}; "
        f"confirmation due {deadline.isoformat()}",
        envelope_id=str(message.envelope.id),
    )
    return order.number


def _advance(uow: UnitOfWork, message: DecodedMessage, reported: ConfirmationStatus) -> None:
    data = message.data
    assert isinstance(data, OrderAcceptedV1 | OrderConfirmedV1)
    order = require_order(uow, data.number)
    before = ConfirmationStatus(order.confirmation_status)
    after = advance(before, reported)
    now = uow.clock()
    order.confirmation_status = after.value
    if after is ConfirmationStatus.CONFIRMED and order.confirmed_at is None:
        order.confirmed_at = data.at
        notify.stage(uow, order, ORDER_CONFIRMED, str(message.envelope.id))
    order.updated_at = now
    summary = f"confirmation {before.value} -> {after.value}"
    if after is before:
        summary = f"{reported.value} reported; stays {before.value}"
    record(
        uow.session,
        order,
        now,
        message.envelope.type,
        summary,
        envelope_id=str(message.envelope.id),
    )


def accept_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> accepted (never backwards)."""
    _advance(uow, message, ConfirmationStatus.ACCEPTED)


def confirm_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Confirmation axis -> confirmed; a breach already recorded stays on record."""
    _advance(uow, message, ConfirmationStatus.CONFIRMED)


def change_lines(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Replace the lines unless they are locked or the order is over."""
    data = message.data
    assert isinstance(data, OrderLinesChangedV1)
    order = require_order(uow, data.number)
    check_lines_may_change(
        lines_locked=order.lines_locked,
        fulfillment=FulfillmentStatus(order.fulfillment_status),
        archived=order.archived,
    )
    lines = _specs(data.lines)
    replace_lines(uow.session, order.id, lines)
    before, order.total = order.total, order_total(lines)
    order.updated_at = uow.clock()
    record(
        uow.session,
        order,
        order.updated_at,
        "order.lines_changed",
        f"{len(lines)} lines; total {before} -> {order.total}",
        envelope_id=str(message.envelope.id),
    )


def archive_order(uow: UnitOfWork, message: DecodedMessage) -> None:
    """Archive: no further automatic action on this order."""
    data = message.data
    assert isinstance(data, OrderArchivedV1)
    order = require_order(uow, data.number)
    order.updated_at = uow.clock()
    if not order.archived:
        order.archived = True
        record(
            uow.session,
            order,
            order.updated_at,
            "order.archived",
            "archived",
            envelope_id=str(message.envelope.id),
        )
