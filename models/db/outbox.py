"""Outbox claims: which jobs the relay sends now, without two schedulers sending one twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from models.db.machinery import OutboxJob
from models.db.uow import StagedJob

# Re-sends back off: redeliver_after, x2, x4 ... capped at this many doublings.
MAX_BACKOFF_DOUBLINGS = 5


def claim_due(
    session: Session,
    now: datetime,
    *,
    first_send: bool,
    redeliver_after: timedelta,
    limit: int,
) -> list[StagedJob]:
    """Mark due pending jobs as sent and return them.

    `first_send` picks jobs never sent (the relay); otherwise jobs sent but not done in time
    (the reconciler). The conditional UPDATE re-checks `next_send_at`, so a concurrent
    scheduler that claimed a row first leaves nothing for the second.
    """
    sent_filter = OutboxJob.sends == 0 if first_send else OutboxJob.sends > 0
    candidates = session.execute(
        select(OutboxJob.id, OutboxJob.sends)
        .where(OutboxJob.status == "pending", OutboxJob.next_send_at <= now, sent_filter)
        .order_by(OutboxJob.next_send_at, OutboxJob.id)
        .limit(limit)
    ).all()
    claimed: list[StagedJob] = []
    for row_id, sends in candidates:
        delay = redeliver_after * (2 ** min(sends, MAX_BACKOFF_DOUBLINGS))
        result = session.execute(
            update(OutboxJob)
            .where(
                and_(
                    OutboxJob.id == row_id,
                    OutboxJob.status == "pending",
                    OutboxJob.next_send_at <= now,
                )
            )
            .values(sent_at=now, sends=OutboxJob.sends + 1, next_send_at=now + delay)
            .returning(OutboxJob.id, OutboxJob.job, OutboxJob.queue)
        ).first()
        if result is not None:
            claimed.append(StagedJob(outbox_id=result[0], job=result[1], queue=result[2]))
    return claimed
