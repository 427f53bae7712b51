"""Emails from templates: stable Message-IDs, escaping, and no way to inject headers or code."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from models.db.notifications import Claim
from models.domain.notifications import OEM_CONFIRMATION_FAILURE
from tasks.notifications.sending import build_email, message_id
from workers.adapters import smtp as mail
from workers.adapters import templating
from workers.adapters.templating import JinjaRenderer

SENDER = "orders@shop.example"
EVIL_NOTE = "Leave at door\r\nBcc: x@example.com\n{{ 7*7 }} <script>alert(1)</script>"


def _claim(template: str, **context: Any) -> Claim:
    base = {
        "order_number": "M1", "customer_name": "Ada", "currency": "EUR", "total": 25_800,
        "payment_status": "paid", "fulfillment_status": "shipped", "note": None, "reason": None,
        "carrier": None, "tracking_numbers": [],
    }  # fmt: skip
    return Claim(7, "order:1:env-1:" + template, "email", "ada@example.com", template,
                 {**base, **context}, 1)  # fmt: skip


def _roundtrip(email: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(email.as_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(email: EmailMessage) -> tuple[str, str]:
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_a_note_with_a_header_and_template_code_stays_plain_text() -> None:
    # Given a shipment email whose note tries to add a Bcc header and run template code
    email = build_email(JinjaRenderer(), _claim("fulfillment_shipped", note=EVIL_NOTE,
                        carrier="DHL", tracking_numbers=["1Z999"]), SENDER)  # fmt: skip
    # When it is serialised and parsed back as a mail server would
    received = _roundtrip(email)
    text, html = _parts(received)
    # Then no header was added and nothing was evaluated
    assert sorted(received.keys()) == sorted(
        ["From", "To", "Subject", "Message-ID", "Content-Type", "MIME-Version"]
    )
    assert received["Bcc"] is None
    assert "Bcc: x@example.com" in text
    assert "{{ 7*7 }}" in text
    assert "49" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "with DHL" in text
    assert "Tracking: 1Z999" in text


def test_subjects_never_carry_line_breaks() -> None:
    email = build_email(
        JinjaRenderer(), _claim("order_confirmed", order_number="M1\r\nBcc: x@y"), SENDER
    )
    assert email["Subject"] == "Order M1 Bcc: x@y confirmed"
    assert _roundtrip(email)["Bcc"] is None


def test_the_message_id_is_stable_per_notification_key() -> None:
    first = message_id("order:1:env-1:payment_paid", SENDER)
    assert first == message_id("order:1:env-1:payment_paid", SENDER)
    assert first != message_id("order:1:env-2:payment_paid", SENDER)
    assert first.endswith("@shop.example>")


def test_every_template_renders_for_every_kind() -> None:
    env = templating.environment()
    names = sorted(
        {
            p.name.split(".")[0]
            for p in Path(templating.__file__).parent.joinpath("templates").glob("*.subject.txt")
        }
        - {OEM_CONFIRMATION_FAILURE}
    )
    names = [name for name in names if not name.startswith("desk_")]  # not for customers
    assert len(names) == 12
    for name in names:
        rendered = templating.render(
            env, name, _claim(name, backorder_number="M1-backorder").context
        )
        assert "M1" in rendered.subject
        assert "Hello Ada" in rendered.text


def test_templates_can_be_overridden_from_a_folder(tmp_path: Path) -> None:
    (tmp_path / "payment_paid.subject.txt").write_text("Danke für {{ order_number }}")
    rendered = templating.render(
        templating.environment(tmp_path), "payment_paid", _claim("payment_paid").context
    )
    assert rendered.subject == "Danke für M1"
    assert "in full" in rendered.text  # the body still comes from ours


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", ("smtp", "127.0.0.1", 2525, None, None)),
        (
            "smtp+starttls://u%40x:p%3Aw@mail.example",
            ("smtp+starttls", "mail.example", 587, "u@x", "p:w"),
        ),
        ("smtps://mail.example", ("smtps", "mail.example", 465, None, None)),
    ],
)
def test_smtp_urls_parse(url: str, expected: tuple[object, ...]) -> None:
    target = mail.parse_smtp_url(url)
    assert (target.scheme, target.host, target.port, target.username, target.password) == expected
    assert "p:w" not in repr(target)


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("desk_hold_expired", "Card hold lapsed: order M1 needs a new payment"),
        ("desk_hold_expiring", "Card hold on order M1 lapses at 2026-03-09T00:00:00+00:00"),
        ("desk_capture_failed", "Card payment problem on order M1"),
    ],
)
def test_desk_payment_templates_show_money_in_major_units(name: str, subject: str) -> None:
    context = {
        "order_number": "M1",
        "currency": "EUR",
        "total": 25_800,
        "note": None,
        "capture_before": "2026-03-09T00:00:00+00:00",
        "reason": "card_declined",
    }
    rendered = templating.render(templating.environment(), name, context)
    assert rendered.subject == subject
    assert "(258.00 EUR)" in rendered.text
    assert "(258.00 EUR)" in rendered.html
