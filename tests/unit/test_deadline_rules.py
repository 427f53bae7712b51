"""Confirmation-scan rules without a database: webhook signatures, where the desk reminder falls
in the window, the per-tick rate limit, and what a manufacturer's webhook answer means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.db.commerce import Manufacturer
from models.db.notifications import Claim
from models.domain.deadlines import awaiting_confirmation, batch_sizes, reminder_applies
from models.domain.errors import PermanentError, RetryableError
from models.domain.notifications import DESK_CONFIRMATION_REMINDER, OEM_CONFIRMATION_FAILURE
from models.domain.webhook_signature import signature_header, verify
from tasks.deadlines import webhook as oem_message
from tasks.messages.v1.orders import OrderPlacedV1
from tasks.orders.placing import order_row
from tests import factories as f
from workers.adapters import templating
from workers.adapters import webhook as oem_webhook

SECRET = b"whsec_test"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "manufacturers.md"
T = 1_700_000_000


def test_the_signature_header_is_stripe_style_and_matches_a_known_vector() -> None:
    # Given a body and a timestamp (vector checked with `openssl dgst -sha256 -hmac whsec_test`)
    body = b'{"id":"x"}'
    # When it is signed
    header = signature_header(SECRET, T, body)
    # Then the header carries the timestamp and the HMAC of "t.body"
    assert header == (
        "t=1700000000,v1=80e8d098018f757aa814ab1abb924f35d304affa1d93d29611a54696207eb7c3"
    )
    assert verify(SECRET, header, body, now=T) is True


def test_a_tampered_body_another_secret_or_an_old_timestamp_fails_verification() -> None:
    body = b'{"id":"x"}'
    header = signature_header(SECRET, T, body)
    assert verify(SECRET, header, b'{"id":"y"}', now=T) is False
    assert verify(b"other", header, body, now=T) is False
    assert verify(SECRET, header, body, now=T + 301) is False
    assert verify(SECRET, header, body, now=T - 301) is False
    assert verify(SECRET, header, body, now=T + 300) is True


@pytest.mark.parametrize("header", ["", "v1=abc", "t=x,v1=abc", "t=1,t=2,v1=abc", "garbage"])
def test_malformed_signature_headers_fail(header: str) -> None:
    assert verify(SECRET, header, b"{}", now=1) is False


def test_any_one_of_several_v1_values_may_match_during_a_rotation() -> None:
    good = signature_header(SECRET, T, b"{}").split(",")[1]
    assert verify(SECRET, f"t={T},v1={'0' * 64},{good}", b"{}", now=T) is True


def _manufacturer() -> Manufacturer:
    return Manufacturer(
        id="oem-utc", name="UTC Tools", sla_business_days=1, timezone="UTC",
        holiday_country="DE", holiday_subdivision=None, cutoff_hour=17, weekend_days=[5, 6],
        closure_days=[],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("share", "remind_at"),
    [
        (0.75, datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        (0.5, datetime(2026, 3, 3, 3, 0, tzinfo=UTC)),
        (0.25, datetime(2026, 3, 2, 20, 0, tzinfo=UTC)),
    ],
)
def test_the_desk_reminder_falls_at_the_share_of_the_window(
    share: float, remind_at: datetime
) -> None:
    # Given an order placed Monday 13:00 UTC, due Tuesday 17:00 (28 hours later)
    placed = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    data = OrderPlacedV1.model_validate(f.data("order.placed", placed_at=placed.isoformat()))
    # When its row is built with the share
    row = order_row(data, _manufacturer(), placed, share)
    # Then the reminder is that share of the way to the deadline
    assert row["confirmation_deadline"] == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert row["confirmation_remind_at"] == remind_at


def test_only_orders_waiting_for_a_first_breach_are_awaited() -> None:
    base = {"confirmation_status": "accepted", "overdue": False, "archived": False,
            "fulfillment_status": "processing"}  # fmt: skip
    assert awaiting_confirmation(**base) is True  # type: ignore[arg-type]
    for change in ({"confirmation_status": "confirmed"}, {"overdue": True}, {"archived": True},
                   {"fulfillment_status": "cancelled"}):  # fmt: skip
        assert awaiting_confirmation(**{**base, **change}) is False  # type: ignore[arg-type]


def test_a_reminder_helps_only_while_the_deadline_is_ahead() -> None:
    now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert reminder_applies(True, now + timedelta(seconds=1), now) is True
    assert reminder_applies(True, now, now) is False
    assert reminder_applies(False, now + timedelta(hours=1), now) is False
    assert reminder_applies(True, None, now) is False


def test_a_tick_is_cut_into_batches_up_to_the_rate_limit() -> None:
    assert list(batch_sizes(1000, 200)) == [200, 200, 200, 200, 200]
    assert list(batch_sizes(450, 200)) == [200, 200, 50]
    assert list(batch_sizes(3, 200)) == [3]
    assert list(batch_sizes(0, 200)) == []
    with pytest.raises(ValueError, match="batch >= 1"):
        list(batch_sizes(10, 0))


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=500))
def test_batches_never_exceed_the_rate_limit_or_the_batch(per_tick: int, batch: int) -> None:
    sizes = list(batch_sizes(per_tick, batch))
    assert sum(sizes) == per_tick
    assert all(1 <= size <= batch for size in sizes)


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (500, RetryableError, "webhook_http_error"),
        (503, RetryableError, "webhook_http_error"),
        (429, RetryableError, "webhook_http_error"),
        (408, RetryableError, "webhook_http_error"),
        (400, PermanentError, "webhook_refused"),
        (404, PermanentError, "webhook_refused"),
        (410, PermanentError, "webhook_refused"),
        (301, PermanentError, "webhook_redirected"),
        (307, PermanentError, "webhook_redirected"),
    ],
)
def test_webhook_answers_are_retryable_or_permanent(
    status: int, kind: type[Exception], reason: str
) -> None:
    error = oem_webhook.refusal(status)
    assert type(error) is kind
    assert (error.reason, error.detail.split(";")[0]) == (reason, f"HTTP {status}")


def _claim(key: str = "order:7:confirmation_overdue:oem_confirmation_failure:webhook") -> Claim:
    context = {"type": "order.confirmation_failure", "occurred_at": "2026-03-04T17:00:00+00:00",
               "data": {"order_number": "M7", "manufacturer_id": "oem-acme"}}  # fmt: skip
    return Claim(3, key, "webhook", "http://127.0.0.1:1/h", OEM_CONFIRMATION_FAILURE, context, 1)


def test_the_webhook_body_is_compact_sorted_json_with_an_id_stable_per_key() -> None:
    # Given the same staged message claimed twice, and another message
    first, again, other = _claim(), _claim(), _claim("order:8:x:webhook")
    # Then the bodies are byte-identical, and the id differs only between messages
    assert oem_message.body_of(first) == oem_message.body_of(again)
    assert oem_message.body_of(first).startswith(b'{"data":{"manufacturer_id":"oem-acme",')
    assert oem_message.message_id(first.key) != oem_message.message_id(other.key)
    assert f'"id":"{oem_message.message_id(first.key)}"'.encode() in oem_message.body_of(first)


def test_a_non_http_url_is_refused_without_calling_out() -> None:
    with pytest.raises(PermanentError) as caught:
        oem_webhook.post("file:///etc/passwd", b"{}", SECRET, 1.0, ident="x")
    assert caught.value.reason == "webhook_url_refused"
    assert "passwd" not in str(caught.value)


def _context() -> dict[str, str | None]:
    return {
        "order_number": "M42", "manufacturer_id": "oem-acme", "manufacturer_name": "ACME Tools",
        "placed_at": "2026-03-02T08:15:00+00:00",
        "confirmation_deadline": "2026-03-03T14:00:00+00:00",
        "overdue_at": "2026-03-03T14:00:05+00:00", "confirmation_status": "accepted",
        "reminded_at": "2026-03-03T06:00:00+00:00",
    }  # fmt: skip


def test_the_manufacturer_and_desk_templates_render() -> None:
    env = templating.environment()
    failure = templating.render(env, OEM_CONFIRMATION_FAILURE, _context())
    reminder = templating.render(env, DESK_CONFIRMATION_REMINDER, _context())
    assert failure.subject == ("Order confirmation failure: order M42 was not confirmed in time")
    assert failure.text.startswith("Dear ACME Tools,\n\norder M42, placed 2026-03-02T08:15:00")
    assert "<strong>M42</strong>" in failure.html
    assert reminder.subject == (
        "Reminder: order M42 (ACME Tools) is due for confirmation by 2026-03-03T14:00:00+00:00"
    )
    assert "Due by:    2026-03-03T14:00:00+00:00 (UTC)" in reminder.text


def test_the_signed_example_and_the_snippet_in_the_manufacturers_guide_agree() -> None:
    # Given the example request and the Python check in docs/manufacturers.md
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    header = next(x for x in lines if x.startswith("Orderflow-Signature: ")).split(": ", 1)[1]
    body = next(x for x in lines if x.startswith('{"data"')).encode()
    stamp = int(header.split(",")[0].removeprefix("t="))
    snippet = GUIDE.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - our own documentation, checked as it is published
    # Then both verify the example with its documented secret, and refuse a changed body
    assert verify(b"whsec_example", header, body, now=stamp) is True
    assert namespace["verify"](b"whsec_example", header, body, tolerance_s=10**10) is True
    assert namespace["verify"](b"whsec_example", header, body + b" ", tolerance_s=10**10) is False
