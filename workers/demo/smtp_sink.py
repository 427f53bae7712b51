"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread) that keeps what it receives, with fault
controls (down/up, rejected recipients, 4xx at DATA, refused AUTH) for `orderflow demo` and the
tests."""

from __future__ import annotations

import argparse
import hmac
import socket
import ssl
import sys
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
_TEMPORARY_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    451: "4.3.0 Requested action aborted: local error in processing",
}


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink received it. `headers` are the raw (name, value) pairs in order;
    `text`/`html` are decoded with line endings made "\\n"; `raw` is the DATA as received."""

    mail_from: str
    rcpt_tos: list[str]
    message_id: str | None
    subject: str | None
    headers: list[tuple[str, str]]
    text: str
    html: str | None
    raw: bytes


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if not isinstance(part, EmailMessage):
        return None
    try:
        text = str(part.get_content())
    except LookupError:  # an unknown charset: a sink keeps the mail rather than refuse it
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    # SMTP carries CRLF; callers compare with templates that use "\n".
    return text.replace("\r\n", "\n")


def parse_mail(mail_from: str, rcpt_tos: list[str], raw: bytes) -> ReceivedMail:
    """Decode a received message into a `ReceivedMail`."""
    message: Message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
    message_id, subject = message.get("Message-ID"), message.get("Subject")
    return ReceivedMail(
        mail_from=mail_from,
        rcpt_tos=list(rcpt_tos),
        message_id=None if message_id is None else str(message_id).strip(),
        subject=None if subject is None else str(subject),
        headers=[(name, str(value)) for name, value in message.raw_items()],
        text=_part_text(message, "plain") or "",
        html=_part_text(message, "html"),
        raw=raw,
    )


class _Handler:
    """aiosmtpd hooks plus the state they share with the test thread (guarded by one lock)."""

    def __init__(
        self, require_auth: tuple[str, str] | None, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.require_auth = require_auth
        self.tls_context = tls_context
        self.changed = threading.Condition()
        self.messages: list[ReceivedMail] = []
        self.rejections: dict[str, tuple[int, str]] = {}
        self.temporary: list[int] = []
        self.attempts = 0
        self.rcpt_rejections = 0
        self.auth_refusals_left = 0  # AUTH commands still to refuse whatever the credentials
        self.auth_refusals = 0

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd `authenticator`: PLAIN and LOGIN both hand over a LoginPassword."""
        with self.changed:
            if self.auth_refusals_left > 0:
                self.auth_refusals_left -= 1
                self.auth_refusals += 1
                return AuthResult(success=False, handled=False)
        ok = False
        if self.require_auth is not None and isinstance(data, LoginPassword):
            user, password = (s.encode() for s in self.require_auth)
            ok = hmac.compare_digest(data.login, user) & hmac.compare_digest(
                data.password, password
            )
        # handled=False makes aiosmtpd send its own "535 5.7.8"; the default (True) sends nothing.
        return AuthResult(success=ok, handled=False)

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Checked here rather than with SMTP(auth_required=True), which warns on every connection.
        if self.require_auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.changed:
            rejection = self.rejections.get(address.casefold())
            if rejection is not None:
                self.rcpt_rejections += 1
                return f"{rejection[0]} {rejection[1]}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        # aiosmtpd calls this after the final "."; its return value is the reply to the DATA.
        with self.changed:
            self.attempts += 1
            code = self.temporary.pop(0) if self.temporary else None
        if code is not None:
            if code == 421 and server.transport is not None:
                # 421 means the server closes the channel; close once the reply is written.
                server.loop.call_soon(server.transport.close)
            return f"{code} {_TEMPORARY_TEXT.get(code, '4.0.0 Temporary failure')}"
        mail = parse_mail(
            envelope.mail_from or "", envelope.rcpt_tos, envelope.original_content or b""
        )
        with self.changed:
            self.messages.append(mail)
            self.changed.notify_all()
        return "250 OK"


class _LoopbackController(Controller):
    """A Controller serving on a socket we bound ourselves (SO_REUSEADDR, port 0 resolved)."""

    def __init__(self, handler: _Handler, sock: socket.socket) -> None:
        auth: dict[str, Any] = {}
        if handler.require_auth is not None:
            auth = {"authenticator": handler.authenticate, "auth_require_tls": False}
        if handler.tls_context is not None:
            auth["tls_context"] = handler.tls_context  # offers STARTTLS
        super().__init__(
            handler, hostname=HOST, port=sock.getsockname()[1], server_hostname="localhost", **auth
        )
        self._sock = sock

    def _create_server(self) -> Awaitable[Any]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Lets come_up() rebind at once although closed connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


class SmtpSink:
    """A running sink. Start with `SmtpSink.start()`; every method is safe from any thread."""

    host = HOST

    def __init__(self, handler: _Handler, port: int) -> None:
        self._handler = handler
        self._lifecycle = threading.Lock()
        self._controller: _LoopbackController | None = None
        self.port = port

    @classmethod
    def start(
        cls,
        port: int = 0,
        *,
        require_auth: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> SmtpSink:
        """Listen on 127.0.0.1:`port` (0 picks a free port) until `stop()`; with a server
        `tls_context`, STARTTLS is offered."""
        sock = _bind(port)
        sink = cls(_Handler(require_auth, tls_context), sock.getsockname()[1])
        sink._run(sock)
        return sink

    def _run(self, sock: socket.socket) -> None:
        controller = _LoopbackController(self._handler, sock)
        try:
            controller.start()
        except BaseException:
            sock.close()
            raise
        self._controller = controller

    @property
    def url(self) -> str:
        """smtp://[user:password@]127.0.0.1:PORT; it holds the password, so never log it."""
        auth = self._handler.require_auth
        userinfo = "" if auth is None else f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}@"
        return f"smtp://{userinfo}{HOST}:{self.port}"

    def __repr__(self) -> str:
        return f"SmtpSink({HOST}:{self.port}, up={self.is_up})"

    @property
    def is_up(self) -> bool:
        """Whether the port is accepting connections."""
        return self._controller is not None

    def stop(self) -> None:
        """Close the listener and every open connection; idempotent."""
        self.go_down()

    def go_down(self) -> None:
        """Stop listening (clients get connection refused) and drop open connections."""
        with self._lifecycle:
            if self._controller is not None:
                self._controller.stop()
                self._controller = None

    def come_up(self) -> None:
        """Listen again on the same port; kept messages and fault settings survive."""
        with self._lifecycle:
            if self._controller is None:
                self._run(_bind(self.port))

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of the stored messages, oldest first."""
        with self._handler.changed:
            return list(self._handler.messages)

    def count(self) -> int:
        """How many messages are stored."""
        with self._handler.changed:
            return len(self._handler.messages)

    def clear(self) -> None:
        """Forget stored messages and reset the counters (fault settings stay)."""
        with self._handler.changed:
            self._handler.messages.clear()
            self._handler.attempts = 0
            self._handler.rcpt_rejections = 0
            self._handler.auth_refusals = 0

    def wait_for_count(self, count: int, timeout: float) -> bool:
        """Block until at least `count` messages are stored or `timeout` seconds pass."""
        with self._handler.changed:
            return self._handler.changed.wait_for(
                lambda: len(self._handler.messages) >= count, timeout
            )

    @property
    def attempts(self) -> int:
        """DATA transactions seen, stored or refused with a 4xx."""
        with self._handler.changed:
            return self._handler.attempts

    @property
    def rcpt_rejections(self) -> int:
        """RCPT TO commands refused by `reject_recipient`."""
        with self._handler.changed:
            return self._handler.rcpt_rejections

    def reject_recipient(
        self, address: str, code: int = 550, text: str = "5.1.1 mailbox unavailable"
    ) -> None:
        """Answer RCPT TO:<address> (case-insensitive) with `code text` from now on."""
        if not 400 <= code <= 599:
            raise ValueError(f"a rejection needs a 4xx or 5xx code, not {code}")
        with self._handler.changed:
            self._handler.rejections[address.casefold()] = (code, text)

    def refuse_auth(self, count: int) -> None:
        """Answer the next `count` AUTH commands with 535, right credentials or not (a mail
        server rejecting a login it accepted before); needs `require_auth`. smtplib's `login`
        tries PLAIN, then LOGIN: one refused login takes two."""
        if count < 0 or self._handler.require_auth is None:
            raise ValueError("refuse_auth needs require_auth and a count >= 0")
        with self._handler.changed:
            self._handler.auth_refusals_left += count

    @property
    def auth_refusals(self) -> int:
        """AUTH commands refused by `refuse_auth`."""
        with self._handler.changed:
            return self._handler.auth_refusals

    def temporary_failure(self, count: int, code: int = 451) -> None:
        """Answer the next `count` DATA transactions with `code` (421 also closes the connection)
        and store nothing from them."""
        if not 400 <= code <= 499 or count < 0:
            raise ValueError(f"needs a 4xx code and a count >= 0, not {code} x {count}")
        with self._handler.changed:
            self._handler.temporary.extend([code] * count)


def _summary(mail: ReceivedMail) -> str:
    return (
        f"{time.strftime('%H:%M:%S')} {mail.mail_from} -> {', '.join(mail.rcpt_tos)} "
        f"| {mail.subject!r} | {mail.message_id} | {len(mail.raw)} bytes\n"
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m workers.demo.smtp_sink --port N`: a line per received message until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require AUTH PLAIN/LOGIN")
    args = parser.parse_args(argv)
    auth: tuple[str, str] | None = None
    if args.auth:
        user, colon, password = str(args.auth).partition(":")
        if not colon:
            parser.error("--auth takes USER:PASSWORD")
        auth = (user, password)
    with SmtpSink.start(args.port, require_auth=auth) as sink:
        sys.stdout.write(f"SMTP sink listening on {HOST}:{sink.port}\n")
        sys.stdout.flush()
        seen = 0
        try:
            while True:
                if sink.wait_for_count(seen + 1, timeout=1.0):
                    batch = sink.messages[seen:]
                    sys.stdout.write("".join(_summary(mail) for mail in batch))
                    sys.stdout.flush()
                    seen += len(batch)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
