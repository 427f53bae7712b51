"""The SMTP adapter against a real SMTP server: what is retryable and what is permanent."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from models.domain.errors import PermanentError, RetryableError
from tasks.notifications.sending import message_id
from workers.adapters import smtp as mail
from workers.demo.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start(require_auth=("desk", "s3cret-pw")) as server:
        yield server


def _email(to: str = "ada@example.com") -> EmailMessage:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "orders@shop.example", to, "Hi"
    email["Message-ID"] = message_id("k1", "orders@shop.example")
    email.set_content("hello")
    return email


def test_authenticated_delivery_keeps_the_message_id(sink: SmtpSink) -> None:
    mail.send(mail.parse_smtp_url(sink.url), _email())
    assert [(m.rcpt_tos, m.message_id) for m in sink.messages] == [
        (["ada@example.com"], message_id("k1", "orders@shop.example"))
    ]


def test_a_wrong_password_keeps_mail_waiting_and_never_shows_the_password(sink: SmtpSink) -> None:
    target = mail.parse_smtp_url(f"smtp://desk:wrong-pw@127.0.0.1:{sink.port}")
    with pytest.raises(RetryableError) as caught:
        mail.send(target, _email())
    assert (caught.value.reason, "wrong-pw" in str(caught.value)) == ("smtp_auth", False)
    assert sink.count() == 0


def test_a_refused_recipient_is_permanent_and_a_4xx_is_retryable(sink: SmtpSink) -> None:
    target = mail.parse_smtp_url(sink.url)
    sink.reject_recipient("gone@example.com", 550, "5.1.1 no such user")
    with pytest.raises(PermanentError, match=r"recipient_refused: 550 5\.1\.1 no such user"):
        mail.send(target, _email("gone@example.com"))
    sink.temporary_failure(1, 451)
    with pytest.raises(RetryableError) as deferred:
        mail.send(target, _email())
    assert deferred.value.reason == "smtp_deferred"
    mail.send(target, _email())
    assert (sink.count(), sink.attempts, sink.rcpt_rejections) == (1, 2, 1)


def test_a_server_that_is_down_is_retryable(sink: SmtpSink) -> None:
    sink.go_down()
    with pytest.raises(RetryableError) as caught:
        mail.send(mail.parse_smtp_url(sink.url), _email())
    assert caught.value.reason == "smtp_unreachable"
    assert sink.count() == 0


def test_starttls_with_auth_delivers_over_an_encrypted_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server offering STARTTLS with a certificate from a test CA the client trusts
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with SmtpSink.start(require_auth=("desk", "pw"), tls_context=server_context) as sink:
        # When sending with smtp+starttls://
        mail.send(mail.parse_smtp_url(f"smtp+starttls://desk:pw@127.0.0.1:{sink.port}"), _email())
        # Then it arrived
        assert [m.rcpt_tos for m in sink.messages] == [["ada@example.com"]]


def test_starttls_refuses_a_certificate_it_cannot_verify(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    with SmtpSink.start(tls_context=server_context) as sink:
        with pytest.raises(RetryableError) as caught:
            mail.send(mail.parse_smtp_url(f"smtp+starttls://127.0.0.1:{sink.port}"), _email())
        assert caught.value.reason == "smtp_unreachable"
        assert sink.count() == 0
