"""Rules of the confirmation scan and the desk reminder (pure): which orders still wait for a
first breach, when a reminder still helps, and how one tick's work is cut into transactions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from models.domain.statuses import ConfirmationStatus, FulfillmentStatus

DEFAULT_REMINDER_SHARE = 0.75
OVERDUE_EVENT = "order.confirmation_overdue"
OVERDUE_CAUSE = "confirmation_overdue"
REMINDER_CAUSE = "confirmation_reminder"
# The type manufacturers see in the webhook body (docs/manufacturers.md).
FAILURE_WEBHOOK_TYPE = "order.confirmation_failure"


def awaiting_confirmation(
    *, confirmation_status: str, overdue: bool, archived: bool, fulfillment_status: str
) -> bool:
    """Whether an order still waits for its first breach; the scan's SQL and the partial index
    `ix_orders_open_deadline` say the same thing."""
    return (
        confirmation_status != ConfirmationStatus.CONFIRMED.value
        and not overdue
        and not archived
        and fulfillment_status != FulfillmentStatus.CANCELLED.value
    )


def reminder_applies(awaiting: bool, deadline: datetime | None, now: datetime) -> bool:
    """A desk reminder helps only while the order waits and its deadline is still ahead: once it
    has passed, the failure message says it all (and a clock jump must not send both)."""
    return awaiting and deadline is not None and now < deadline


def batch_sizes(per_tick: int, batch: int) -> Iterator[int]:
    """Transaction sizes for one tick: `batch` orders at a time, at most `per_tick` in all.

    The cap is the rate limit: after a long outage or a clock jump forward, the backlog is
    worked off over several ticks instead of in one burst of mail.
    """
    if per_tick < 0 or batch < 1:
        raise ValueError(f"need per_tick >= 0 and batch >= 1, got {per_tick} and {batch}")
    left = per_tick
    while left > 0:
        size = min(batch, left)
        yield size
        left -= size
