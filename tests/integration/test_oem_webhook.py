"""The manufacturer's failure webhook against a real HTTP receiver: signed, posted once, retried
while the receiver is down or failing, given up on for good answers that will not change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from unittest.mock import Mock

import pytest
from sqlalchemy import select

from models.db.engine import Database
from models.db.tables import Notification, OutboxJob
from models.db.uow import UnitOfWork
from models.domain.errors import RetryableError
from models.domain.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tasks.deadlines import webhook as oem_message
from tasks.deadlines.scan import mark_overdue
from tasks.deadlines.webhook import webhook_job
from tasks.outbox.jobs import JobRegistry
from tasks.outbox.runner import RunResult, run_outbox_job
from tests import factories as f
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import feed
from workers.adapters import webhook as oem_webhook
from workers.adapters.webhook import HttpWebhookPoster

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
SECRET = "whsec_never_in_the_database"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver.start(SECRET.encode()) as server:
        yield server


def _overdue_order(db: Database, url: str) -> int:
    """One order past its deadline, marked by the scan; the webhook job's outbox id."""
    maker = f.manufacturer(notify_email=None, notify_webhook_url=url)
    feed(db, [f.body(maker), f.body(f.order("M0", placed_at=T0.isoformat()))], f.policy(), T0)
    with UnitOfWork(db, lambda: DUE) as uow:
        assert mark_overdue(uow, DUE, 10).staged == 1
        uow.commit()
    with db.sessions() as session:
        query = select(OutboxJob.id).where(OutboxJob.job == "notification.webhook")
        return int(session.scalars(query).one())


def _run(db: Database, outbox_id: int, secret: str = SECRET) -> RunResult:
    jobs = JobRegistry([webhook_job(HttpWebhookPoster(secret.encode(), 10.0))])
    return run_outbox_job(lambda: UnitOfWork(db, lambda: datetime.now(UTC)), outbox_id, 20,
                          jobs=jobs)  # fmt: skip


def _notification(db: Database) -> Notification:
    with db.sessions() as session:
        return session.scalars(select(Notification)).one()


def test_the_failure_webhook_is_posted_once_signed_and_recorded(
    db: Database, receiver: WebhookReceiver
) -> None:
    # Given an overdue order of a manufacturer with a webhook
    job = _overdue_order(db, receiver.url)
    # When the job runs, and is delivered again after it was done
    first, again = _run(db, job), _run(db, job)
    # Then one signed POST arrived, with the message's stable id, and it is recorded sent
    assert (first, again) == (RunResult("done"), RunResult("duplicate", "done"))
    [post] = receiver.requests
    note = _notification(db)
    assert (post.status, post.signature_ok, post.path) == (200, True, "/hooks/orderflow")
    assert post.headers[SIGNATURE_HEADER].startswith(f"t={post.headers[TIMESTAMP_HEADER]},v1=")
    assert post.document == {
        "id": oem_message.message_id(note.key), "type": "order.confirmation_failure",
        "occurred_at": DUE.isoformat(),
        "data": {"number": "M0", "manufacturer_id": "oem-acme", "placed_at": T0.isoformat(),
                 "confirmation_deadline": DUE.isoformat(), "overdue_at": DUE.isoformat(),
                 "confirmation_status": "new"},
    }  # fmt: skip
    assert (note.status, note.attempts, note.message_id) == ("sent", 1, post.document["id"])
    assert post.headers[oem_webhook.ID_HEADER] == post.document["id"]


def test_a_receiver_that_is_down_is_retried_and_gets_the_message_once_back_up(
    db: Database, receiver: WebhookReceiver
) -> None:
    # Given an overdue order and a receiver that is down
    job = _overdue_order(db, receiver.url)
    receiver.go_down()
    # When the job runs
    with pytest.raises(RetryableError) as caught:
        _run(db, job)
    # Then nothing arrived and the message waits with the reason
    assert caught.value.reason == "webhook_unreachable"
    assert receiver.requests == []
    assert (_notification(db).status, _notification(db).last_error) == (
        "pending",
        "webhook_unreachable: ConnectionRefusedError",
    )
    # And once the receiver is back, the retry delivers it once
    receiver.come_up()
    assert _run(db, job) == RunResult("done")
    assert (len(receiver.requests), receiver.count()) == (1, 1)
    assert (_notification(db).status, _notification(db).attempts) == ("sent", 2)


def test_an_unforeseen_error_leaves_the_message_pending_for_the_next_try(
    db: Database, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an overdue order, and a POST that fails in a way nobody planned for
    job = _overdue_order(db, receiver.url)
    real_post = oem_webhook.post
    monkeypatch.setattr(oem_webhook, "post", Mock(side_effect=ValueError("nobody planned this")))
    # When the job runs
    with pytest.raises(RetryableError, match="job_error"):
        _run(db, job)
    # Then nothing arrived, and the message is pending again (not held as `sending` for
    # minutes), with the error's type and never its text
    note = _notification(db)
    assert receiver.requests == []
    assert (note.status, note.attempts, note.last_error) == ("pending", 1, "unexpected ValueError")
    # And the next try sends it at once
    monkeypatch.setattr(oem_webhook, "post", real_post)
    assert _run(db, job) == RunResult("done")
    assert (receiver.count(), _notification(db).status, _notification(db).attempts) == (
        1,
        "sent",
        2,
    )


def test_a_503_is_retried_until_the_receiver_accepts(
    db: Database, receiver: WebhookReceiver
) -> None:
    # Given an overdue order whose receiver answers 503 once
    job = _overdue_order(db, receiver.url)
    receiver.fail_next(1, 503)
    with pytest.raises(RetryableError, match="HTTP 503"):
        _run(db, job)
    assert _run(db, job) == RunResult("done")
    assert [r.status for r in receiver.requests] == [503, 200]


def test_a_refusal_is_recorded_with_its_reason_and_never_retried(
    db: Database, receiver: WebhookReceiver
) -> None:
    # Given an overdue order whose receiver answers 404
    job = _overdue_order(db, receiver.url)
    receiver.fail_next(5, 404)
    # When the job runs, and runs again
    first, again = _run(db, job), _run(db, job)
    # Then it failed once with the reason, and was not posted a second time
    assert (first, again) == (RunResult("failed", "webhook_refused"),
                              RunResult("duplicate", "failed"))  # fmt: skip
    note = _notification(db)
    assert (note.status, note.attempts, note.last_error) == (
        "failed",
        1,
        "webhook_refused: HTTP 404",
    )
    assert [r.status for r in receiver.requests] == [404]


def test_without_a_secret_nothing_is_sent_unsigned_and_the_secret_is_never_stored(
    db: Database, receiver: WebhookReceiver
) -> None:
    # Given an overdue order and a worker without ORDERFLOW_OEM_WEBHOOK_SECRET
    job = _overdue_order(db, receiver.url)
    with pytest.raises(RetryableError, match="webhook_unsigned"):
        _run(db, job, secret="")
    assert receiver.requests == []
    # When the secret is configured, the message goes, signed
    assert _run(db, job) == RunResult("done")
    assert [r.signature_ok for r in receiver.requests] == [True]
    # Then the secret appears in no stored row
    with db.sessions() as session:
        stored = [str(row.__dict__) for model in (Notification, OutboxJob)
                  for row in session.scalars(select(model))]  # fmt: skip
    assert len(stored) == 3  # the webhook, its job and the outbound event
    assert not any(SECRET in text for text in stored)
    assert _run(db, job) == RunResult("duplicate", "done")
    assert receiver.count() == 1
