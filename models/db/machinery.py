"""Tables for delivery machinery: inbox, outbox, quarantine, parking, operations, timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.db.base import Base, Id, UTCDateTime


class InboxEntry(Base):
    """A consumed envelope id; the primary key makes a second delivery a no-op."""

    __tablename__ = "inbox"
    envelope_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxJob(Base):
    """Work to do after a commit; the relay sends it, the reconciler re-sends it until done."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    job: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sends: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_outbox_status_next_send", "status", "next_send_at"),)


class QuarantinedMessage(Base):
    """Bad input kept with its reason, visible and replayable."""

    __tablename__ = "quarantine"
    # The same bytes held twice (a redelivered entry, a consumer that took over a slow batch)
    # are one record; its `deliveries` counts them.
    __table_args__ = (
        Index(
            "ux_quarantine_held_fingerprint",
            "fingerprint",
            unique=True,
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    envelope_id: Mapped[str | None] = mapped_column(String(64), index=True)
    type: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(48), index=True)
    detail: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="held")
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of the body, hex; empty for records kept before it existed.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    deliveries: Mapped[int] = mapped_column(default=1, server_default="1")


class ParkedMessage(Base):
    """A valid message waiting for something it refers to (`order:N`, `manufacturer:ID`)."""

    __tablename__ = "parked"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    envelope_id: Mapped[str] = mapped_column(String(36), unique=True)
    awaits: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column()
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ExternalOperation(Base):
    """A call out (Stripe, SMTP, webhook) committed before it is made, keyed deterministically."""

    __tablename__ = "external_operations"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notification(Base):
    """One email or webhook message; the key makes each (order, change, template) unique."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    channel: Mapped[str] = mapped_column(String(16), default="email")
    recipient: Mapped[str] = mapped_column(String(2000))
    template: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(200))


class TimelineEvent(Base):
    """What happened to an order, in order."""

    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    envelope_id: Mapped[str | None] = mapped_column(String(36))


class SchedulerRun(Base):
    """One periodic job's tick; the unique pair stops two schedulers from firing twice."""

    __tablename__ = "scheduler_runs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    tick: Mapped[datetime] = mapped_column(UTCDateTime)
    owner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("job", "tick"),)


class ProbeEffect(Base):
    """Effects of the built-in `system.probe` job, counted by self-checks and tests."""

    __tablename__ = "probe_effects"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    probe_key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
