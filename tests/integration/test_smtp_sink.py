"""The SMTP sink as a real client (`smtplib`) sees it: stored mail, down/up on the same port,
rejected recipients, 4xx at DATA and AUTH over plain loopback TCP."""

from __future__ import annotations

import base64
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from workers.demo.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SENDER = "shop@example.test"
RECIPIENT = "ada@example.test"
HTML = "<p>Gr\u00fc\u00dfe, total <b>12,50 \u20ac</b></p>\r\n"
RAW = (
    b"From: Shop <shop@example.test>\r\n"
    b"To: Ada <ada@example.test>\r\n"
    b"Subject: =?utf-8?q?Bestellung_M1_best=C3=A4tigt?=\r\n"
    b"Message-ID: <m1.confirm@orderflow.test>\r\n"
    b"X-Order-Ref: M1\r\n continued\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="BOUNDARY"\r\n'
    b"\r\n"
    b"--BOUNDARY\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe, total 12,50 =E2=82=AC\r\n"
    b".a line that starts with a dot\r\n"
    b"--BOUNDARY\r\n"
    b'Content-Type: text/html; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.b64encode(HTML.encode()) + b"\r\n"
    b"--BOUNDARY--\r\n"
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as server:
        yield server


def client(sink: SmtpSink) -> smtplib.SMTP:
    return smtplib.SMTP(sink.host, sink.port, local_hostname="client.test", timeout=5)


def simple_mail(subject: str = "Order M2 shipped") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = SENDER, RECIPIENT, subject
    mail["Message-ID"] = "<m2.shipped@orderflow.test>"
    mail.set_content("Your order M2 has shipped.\n")
    return mail


def test_a_multipart_message_arrives_with_exact_headers_and_bodies(sink: SmtpSink) -> None:
    # Given a text + html message with an encoded subject, a folded header and a leading dot
    # When it is sent over SMTP
    with client(sink) as smtp:
        refused = smtp.sendmail(SENDER, [RECIPIENT, "ops@example.test"], RAW)
    # Then exactly that message is stored, headers raw and in order, bodies decoded
    assert refused == {}
    assert sink.count() == 1
    mail = sink.messages[0]
    assert (mail.mail_from, mail.rcpt_tos) == (SENDER, [RECIPIENT, "ops@example.test"])
    assert mail.raw == RAW
    assert mail.headers == [
        ("From", "Shop <shop@example.test>"),
        ("To", "Ada <ada@example.test>"),
        ("Subject", "=?utf-8?q?Bestellung_M1_best=C3=A4tigt?="),
        ("Message-ID", "<m1.confirm@orderflow.test>"),
        ("X-Order-Ref", "M1\r\n continued"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/alternative; boundary="BOUNDARY"'),
    ]
    assert mail.subject == "Bestellung M1 best\u00e4tigt"
    assert mail.message_id == "<m1.confirm@orderflow.test>"
    assert mail.text == "Gr\u00fc\u00dfe, total 12,50 \u20ac\n.a line that starts with a dot"
    assert mail.html == "<p>Gr\u00fc\u00dfe, total <b>12,50 \u20ac</b></p>\n"
    assert (sink.attempts, sink.rcpt_rejections) == (1, 0)


def test_a_plain_message_keeps_its_message_id_and_has_no_html(sink: SmtpSink) -> None:
    # Given a text-only EmailMessage with a Message-ID
    mail = simple_mail()
    # When it is sent with send_message
    with client(sink) as smtp:
        smtp.send_message(mail)
    # Then the Message-ID and the text arrive unchanged and there is no html part
    received = sink.messages
    assert len(received) == 1
    assert (received[0].message_id, received[0].subject) == (
        "<m2.shipped@orderflow.test>",
        "Order M2 shipped",
    )
    assert (received[0].text, received[0].html) == ("Your order M2 has shipped.\n", None)
    assert sink.url == f"smtp://127.0.0.1:{sink.port}"


def test_go_down_refuses_connections_and_come_up_delivers_on_the_same_port(
    sink: SmtpSink,
) -> None:
    # Given a sink that took one message and then went down
    port = sink.port
    with client(sink) as smtp:
        smtp.send_message(simple_mail("before"))
    sink.go_down()
    # When a client connects while it is down
    # Then the connection is refused
    with pytest.raises(ConnectionRefusedError):
        client(sink)
    # When it comes up again
    sink.come_up()
    with client(sink) as smtp:
        smtp.send_message(simple_mail("after"))
    # Then it listens on the same port and kept the earlier message
    assert sink.port == port
    assert [m.subject for m in sink.messages] == ["before", "after"]


def test_a_rejected_recipient_gets_550_and_nothing_is_stored(sink: SmtpSink) -> None:
    # Given a recipient whose mailbox is unavailable
    sink.reject_recipient("Gone@Example.test")
    # When mail is sent to that recipient only
    with client(sink) as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        smtp.send_message(simple_mail(), to_addrs=["gone@example.test"])
    # Then the client sees 550 with the given text, and no DATA was attempted or stored
    assert caught.value.recipients == {"gone@example.test": (550, b"5.1.1 mailbox unavailable")}
    assert (sink.count(), sink.attempts, sink.rcpt_rejections) == (0, 0, 1)


@pytest.mark.parametrize("code", [421, 451])
def test_temporary_failures_refuse_data_then_accept(sink: SmtpSink, code: int) -> None:
    # Given the next two DATA transactions fail temporarily
    sink.temporary_failure(2, code=code)
    codes: list[int] = []
    # When a client tries three times, one connection each
    for _ in range(3):
        with client(sink) as smtp:
            try:
                smtp.send_message(simple_mail())
            except smtplib.SMTPDataError as error:
                codes.append(error.smtp_code)
    # Then two attempts were refused with the code, the third was stored
    assert codes == [code, code]
    assert (sink.attempts, sink.count()) == (3, 1)


def test_a_421_at_data_closes_the_connection(sink: SmtpSink) -> None:
    # Given one DATA transaction fails with 421
    sink.temporary_failure(1, code=421)
    with client(sink) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER)
        smtp.rcpt(RECIPIENT)
        # When the message is sent with the low-level data() (sendmail would close itself)
        reply = smtp.data(b"Subject: x\r\n\r\nbody\r\n")
        # Then the reply is 421 and the server has closed the connection
        assert reply == (421, b"4.3.2 Service not available, closing transmission channel")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()
    assert (sink.attempts, sink.count()) == (1, 0)


def test_auth_required_refuses_a_wrong_password_and_accepts_the_right_one() -> None:
    # Given a sink that requires AUTH over plain loopback TCP
    with SmtpSink.start(require_auth=("mailer", "s3cret:/@")) as sink, client(sink) as smtp:
        assert sink.url == f"smtp://mailer:s3cret%3A%2F%40@127.0.0.1:{sink.port}"
        # When a client sends without logging in, then MAIL FROM is refused with 530
        with pytest.raises(smtplib.SMTPSenderRefused) as unauthenticated:
            smtp.send_message(simple_mail())
        # When it logs in with a wrong password, then it gets 535
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            smtp.login("mailer", "wrong")
        # When it logs in with the right one (PLAIN), then the mail is accepted
        assert smtp.login("mailer", "s3cret:/@") == (235, b"2.7.0 Authentication successful")
        smtp.send_message(simple_mail())
        count = sink.count()
    assert unauthenticated.value.smtp_code == 530
    assert wrong.value.smtp_code == 535
    assert count == 1


def test_refuse_auth_refuses_that_many_auth_commands_whatever_the_password() -> None:
    # Given a sink that requires AUTH and is told to refuse the next two AUTH commands
    with SmtpSink.start(require_auth=("mailer", "pw")) as sink:
        sink.refuse_auth(2)
        codes = []
        # When a client logs in with the right password twice (smtplib's login tries PLAIN,
        # then LOGIN: two AUTH commands when the first is refused)
        for _ in range(2):
            with client(sink) as smtp:
                try:
                    codes.append(smtp.login("mailer", "pw")[0])
                except smtplib.SMTPAuthenticationError as refused:
                    codes.append(refused.smtp_code)
        # Then the first login is refused with 535 and the second accepted
        assert (codes, sink.auth_refusals) == ([535, 235], 2)


def test_auth_login_mechanism_is_accepted() -> None:
    # Given a sink that requires AUTH
    with SmtpSink.start(require_auth=("mailer", "pw")) as sink, client(sink) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = "mailer", "pw"
        # When the client uses AUTH LOGIN explicitly
        code, _ = smtp.auth("LOGIN", smtp.auth_login)
        smtp.send_message(simple_mail())
        # Then it is authenticated and the mail stored
        assert (code, sink.count()) == (235, 1)


@pytest.mark.timeout(30)
def test_standalone_prints_a_summary_per_message() -> None:
    # Given `python -m workers.demo.smtp_sink` on a free port
    with subprocess.Popen(
        [sys.executable, "-m", "workers.demo.smtp_sink", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            port = int(banner.rsplit(":", 1)[1])
            # When a message is sent to it
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                smtp.send_message(simple_mail())
            line = proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    # Then it announced its port and printed one summary line
    assert banner == f"SMTP sink listening on 127.0.0.1:{port}\n"
    assert line.split(" ", 1)[1] == (
        "shop@example.test -> ada@example.test | 'Order M2 shipped' "
        f"| <m2.shipped@orderflow.test> | {len(simple_mail().as_bytes(policy=SMTP)):d} bytes\n"
    )
