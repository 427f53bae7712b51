"""Tables for the things of SPEC 1.1: manufacturers, customers, orders and their ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.db.base import Base, Id, UTCDateTime


class Manufacturer(Base):
    """An OEM channel with its confirmation SLA and business calendar."""

    __tablename__ = "manufacturers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sla_business_days: Mapped[int] = mapped_column(default=1)
    sla_hours: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    holiday_country: Mapped[str] = mapped_column(String(2))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    cutoff_hour: Mapped[int] = mapped_column(default=17)
    weekend_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [5, 6])
    closure_days: Mapped[list[str]] = mapped_column(JSON, default=list)
    notify_email: Mapped[str | None] = mapped_column(String(320))
    notify_webhook_url: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    """A customer; balances are derived from orders."""

    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))


_AWAITING_CONFIRMATION = (
    "confirmation_status <> 'confirmed' AND NOT confirmation_overdue AND NOT archived"
    " AND fulfillment_status <> 'cancelled'"
)
# The confirmation scan repeats this predicate word for word (models/db/deadlines.py), so both
# databases match its query to the partial index below.
AWAITING_CONFIRMATION_SQL = _AWAITING_CONFIRMATION
# Backorders share their root's PaymentIntent: only roots must not share one.
_ROOT_WITH_INTENT = "parent_id IS NULL AND stripe_payment_intent_id IS NOT NULL"


class Order(Base):
    """An order with its three independent status axes and stored derived figures."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    manufacturer_id: Mapped[str] = mapped_column(ForeignKey("manufacturers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_method: Mapped[str] = mapped_column(String(16))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmation_status: Mapped[str] = mapped_column(String(16), default="new")
    confirmation_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_overdue: Mapped[bool] = mapped_column(default=False)
    confirmation_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the desk is reminded (a share of the window); cleared once the reminder is staged.
    confirmation_remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfillment_status: Mapped[str] = mapped_column(String(16), default="unfulfilled")
    # When the producer says the current fulfillment status happened (envelope occurred_at):
    # an older change that arrives later is history, not a transition.
    fulfillment_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_status: Mapped[str] = mapped_column(String(24), default="pending")
    hold_state: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    invoiced: Mapped[int] = mapped_column(BigInteger, default=0)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    outstanding_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    archived: Mapped[bool] = mapped_column(default=False)
    lines_locked: Mapped[bool] = mapped_column(default=False)
    download_allowed: Mapped[bool] = mapped_column(default=False)
    tracking_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    carrier: Mapped[str | None] = mapped_column(String(64))
    capture_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the family's capture failed, kept on the root until someone acts (I10).
    capture_failure: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The SLA scan reads only orders still waiting for a first breach, so the partial
        # index stays small however many confirmed, breached or archived orders pile up.
        Index(
            "ix_orders_open_deadline",
            "confirmation_deadline",
            postgresql_where=text(_AWAITING_CONFIRMATION),
            sqlite_where=text(_AWAITING_CONFIRMATION),
        ),
        Index(
            "ix_orders_due_reminder",
            "confirmation_remind_at",
            postgresql_where=text("confirmation_remind_at IS NOT NULL"),
            sqlite_where=text("confirmation_remind_at IS NOT NULL"),
        ),
        # A family is found by its PaymentIntent; only one family may hold each (I2).
        Index("ix_orders_payment_intent", "stripe_payment_intent_id"),
        Index(
            "ux_orders_root_payment_intent",
            "stripe_payment_intent_id",
            unique=True,
            postgresql_where=text(_ROOT_WITH_INTENT),
            sqlite_where=text(_ROOT_WITH_INTENT),
        ),
        # Restocks walk the waiting backorders oldest first.
        Index(
            "ix_orders_backordered",
            "placed_at",
            "id",
            postgresql_where=text("fulfillment_status = 'backordered'"),
            sqlite_where=text("fulfillment_status = 'backordered'"),
        ),
    )


class OrderLine(Base):
    """One SKU line of an order."""

    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger)
    is_insert: Mapped[bool] = mapped_column(default=False)
    __table_args__ = (UniqueConstraint("order_id", "position"), Index("ix_order_lines_sku", "sku"))


class Inventory(Base):
    """On-hand and reserved quantity per SKU."""

    __tablename__ = "inventory"
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)


class StockReservation(Base):
    """Stock held for one order's SKU until it ships (or is cancelled)."""

    __tablename__ = "stock_reservations"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("order_id", "sku"),)


class Restock(Base):
    """One `inventory.received` and what its release run decided."""

    __tablename__ = "restocks"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    quantity: Mapped[int]
    policy: Mapped[str] = mapped_column(String(16))
    considered: Mapped[int] = mapped_column(default=0)
    released: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    available_after: Mapped[int] = mapped_column(default=0)
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RestockDecision(Base):
    """Why one restock released or skipped one backorder."""

    __tablename__ = "restock_decisions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    restock_id: Mapped[int] = mapped_column(ForeignKey("restocks.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))


class Invoice(Base):
    """An amount billed for an order."""

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    envelope_id: Mapped[str | None] = mapped_column(String(36))


class Payment(Base):
    """One signed ledger entry on an order; refunds are negative."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(2000))


class BacklogSku(Base):
    """One undelivered SKU quantity of an order, regular or paid."""

    __tablename__ = "backlog_skus"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"))
    sku: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int]
    remaining: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One paid backlog SKU per order line, whatever runs twice (bulk chunks insert with
        # ON CONFLICT on this index); one regular row per SKU of an order (SKUs are unique
        # per order; regular rows carry no line id because lines are replaced wholesale).
        Index(
            "uq_backlog_skus_paid_line",
            "line_id",
            unique=True,
            postgresql_where=text("kind = 'paid'"),
            sqlite_where=text("kind = 'paid'"),
        ),
        Index(
            "uq_backlog_skus_regular_sku",
            "order_id",
            "sku",
            unique=True,
            postgresql_where=text("kind = 'regular'"),
            sqlite_where=text("kind = 'regular'"),
        ),
    )


class DeliveryNote(Base):
    """A shipment document made from backlog SKUs."""

    __tablename__ = "delivery_notes"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    envelope_id: Mapped[str | None] = mapped_column(String(36))
    reference: Mapped[str | None] = mapped_column(String(255))  # the producer's note number


class DeliveryNoteLine(Base):
    """What one delivery note took from one backlog SKU, and whether it is billed."""

    __tablename__ = "delivery_note_lines"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("delivery_notes.id"), index=True)
    backlog_sku_id: Mapped[int] = mapped_column(ForeignKey("backlog_skus.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    billable: Mapped[bool]
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
