"""The confirmation scan and the desk reminders: take what the stored, indexed times say is due,
mark it, and stage every message it causes in the same transaction, so each happens once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.db import deadlines
from models.db.commerce import Manufacturer, Order
from models.db.orders import record_many
from models.db.uow import UnitOfWork, UowFactory
from models.domain.deadlines import (
    FAILURE_WEBHOOK_TYPE,
    OVERDUE_CAUSE,
    OVERDUE_EVENT,
    REMINDER_CAUSE,
    awaiting_confirmation,
    batch_sizes,
    reminder_applies,
)
from models.domain.notifications import DESK_CONFIRMATION_REMINDER, OEM_CONFIRMATION_FAILURE
from tasks.notifications.staging import Outgoing, stage_all
from tasks.outbox import egress


@dataclass(frozen=True)
class Progress:
    """What one transaction (or one tick) did: orders taken off the due list, messages staged."""

    taken: int = 0
    staged: int = 0

    def __add__(self, other: Progress) -> Progress:
        return Progress(self.taken + other.taken, self.staged + other.staged)


Step = Callable[[UnitOfWork, datetime, int], Progress]


def run_tick(new_uow: UowFactory, now: datetime, step: Step, per_tick: int, batch: int) -> Progress:
    """Run `step` in transactions of `batch` orders until nothing is due or `per_tick` is used up
    (the rate limit: a backlog is worked off over several ticks, each order once)."""
    total = Progress()
    for size in batch_sizes(per_tick, batch):
        with new_uow() as uow:
            done = step(uow, now, size)
            uow.commit()
        total += done
        if done.taken < size:
            break
    return total


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def breach_facts(order: Order) -> dict[str, Any]:
    """What the outbound event and the webhook say about an order's deadline (docs/egress.md,
    docs/manufacturers.md): `number` as in the inbound contract."""
    return {
        "number": order.number,
        "manufacturer_id": order.manufacturer_id,
        "placed_at": _iso(order.placed_at),
        "confirmation_deadline": _iso(order.confirmation_deadline),
        "overdue_at": _iso(order.confirmation_overdue_at),
        "confirmation_status": order.confirmation_status,
    }


def breach_context(order: Order, maker: Manufacturer) -> dict[str, Any]:
    """What the email templates see: the facts, plus the names people read."""
    return {"order_number": order.number, "manufacturer_name": maker.name, **breach_facts(order)}


def mark_overdue(uow: UnitOfWork, now: datetime, limit: int) -> Progress:
    """Mark up to `limit` orders past their deadline overdue and stage, for each, the
    manufacturer's failure message (email and/or webhook), the outbound event and a timeline
    entry: a fixed number of statements for the whole batch."""
    session = uow.session
    marked = deadlines.mark_overdue(session, deadlines.select_overdue(session, now, limit), now)
    messages: list[Outgoing] = []
    events: list[tuple[str, dict[str, Any]]] = []
    timeline: list[dict[str, Any]] = []
    for order, maker in deadlines.orders_with_makers(session, marked):
        context = breach_context(order, maker)
        told = failure_messages(order, maker, context)
        messages += told
        events.append((f"order:{order.id}:{OVERDUE_CAUSE}", breach_facts(order)))
        channels = [m.channel for m in told]
        heard = " and ".join(channels) or "nobody (the manufacturer has no email or webhook)"
        summary = f"confirmation deadline {context['confirmation_deadline']} missed; told {heard}"
        timeline.append(
            {
                "order_id": order.id,
                "at": now,
                "kind": OVERDUE_EVENT,
                "summary": summary,
                "details": {"channels": channels},
            }
        )
    staged = stage_all(uow, messages)
    egress.emit_many(uow, OVERDUE_EVENT, events)
    record_many(session, timeline)
    return Progress(len(marked), staged)


def failure_messages(order: Order, maker: Manufacturer, context: dict[str, Any]) -> list[Outgoing]:
    """The manufacturer's failure message on each channel it has (email, webhook, or both)."""
    told = []
    if maker.notify_email:
        told.append(
            Outgoing(order.id, maker.notify_email, OEM_CONFIRMATION_FAILURE, OVERDUE_CAUSE, context)
        )
    if maker.notify_webhook_url:
        facts = breach_facts(order)
        body = {"type": FAILURE_WEBHOOK_TYPE, "occurred_at": facts["overdue_at"], "data": facts}
        told.append(
            Outgoing(
                order.id,
                maker.notify_webhook_url,
                OEM_CONFIRMATION_FAILURE,
                OVERDUE_CAUSE,
                body,
                channel="webhook",
            )
        )
    return told


def reminder_step(desk_email: str) -> Step:
    """The desk-reminder step for this desk address (from the settings)."""

    def remind(uow: UnitOfWork, now: datetime, limit: int) -> Progress:
        return remind_desk(uow, now, limit, desk_email)

    return remind


def remind_desk(uow: UnitOfWork, now: datetime, limit: int, desk_email: str) -> Progress:
    """Take up to `limit` due reminders; email the desk about those still waiting for their
    confirmation with the deadline ahead. Each reminder is taken once, sent or not."""
    session = uow.session
    taken = deadlines.take_reminders(
        session, deadlines.select_due_reminders(session, now, limit), now
    )
    messages, timeline = [], []
    for order, maker in deadlines.orders_with_makers(session, taken):
        awaiting = awaiting_confirmation(
            confirmation_status=order.confirmation_status,
            overdue=order.confirmation_overdue,
            archived=order.archived,
            fulfillment_status=order.fulfillment_status,
        )
        if not desk_email or not reminder_applies(awaiting, order.confirmation_deadline, now):
            continue
        context = {**breach_context(order, maker), "reminded_at": now.isoformat()}
        messages.append(
            Outgoing(order.id, desk_email, DESK_CONFIRMATION_REMINDER, REMINDER_CAUSE, context)
        )
        summary = f"desk reminded; confirmation due {context['confirmation_deadline']}"
        timeline.append(
            {
                "order_id": order.id,
                "at": now,
                "kind": "order.confirmation_reminder",
                "summary": summary,
            }
        )
    staged = stage_all(uow, messages)
    record_many(session, timeline)
    return Progress(len(taken), staged)
