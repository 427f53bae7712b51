"""The SMTP adapter: the only module that speaks SMTP. Vendor errors become ours here."""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from models.domain.errors import OrderflowError, PermanentError, RetryableError
from workers import metrics

SMTP_TIMEOUT_S = 30.0
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send; the password is never part of any message or log."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    def __repr__(self) -> str:
        return f"SmtpTarget({self.scheme}://{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://[user:password@]host:port`, `smtp+starttls://…` or `smtps://…`."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("ORDERFLOW_SMTP_URL must be smtp://, smtp+starttls:// or smtps://host")
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    if target.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            target.host, target.port, timeout=SMTP_TIMEOUT_S, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT_S)
        if target.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
    if target.username and target.password:
        client.login(target.username, target.password)
    return client


def send(target: SmtpTarget, email: EmailMessage) -> None:
    """Deliver one email; 4xx and network trouble are retryable, 5xx replies are permanent."""
    started = time.perf_counter()
    outcome = "error"  # not one of ours: a bug, counted apart
    try:
        _send(target, email)
        outcome = "sent"
    except OrderflowError as error:
        outcome = error.reason
        raise
    finally:
        metrics.record_smtp(outcome, time.perf_counter() - started)


def _send(target: SmtpTarget, email: EmailMessage) -> None:
    try:
        with _connect(target) as client:
            client.send_message(email)
    except smtplib.SMTPRecipientsRefused as refused:
        codes = [code for code, _ in refused.recipients.values()]
        detail = "; ".join(
            f"{code} {text.decode(errors='replace')}" for code, text in refused.recipients.values()
        )
        if all(code >= 500 for code in codes):
            raise PermanentError("recipient_refused", detail) from None
        raise RetryableError("recipient_deferred", detail) from None
    except smtplib.SMTPAuthenticationError as error:
        # A wrong password is a setting to fix; the mail waits rather than being lost.
        raise RetryableError("smtp_auth", f"authentication refused ({error.smtp_code})") from None
    except smtplib.SMTPResponseException as error:
        text = f"{error.smtp_code} {_text(error.smtp_error)}"
        if error.smtp_code >= 500:
            raise PermanentError("smtp_rejected", text) from None
        raise RetryableError("smtp_deferred", text) from None
    except (smtplib.SMTPException, OSError) as error:
        raise RetryableError("smtp_unreachable", type(error).__name__) from None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class SmtpMailer:
    """Mailer over SMTP to one configured server (a new connection per email)."""

    def __init__(self, target: SmtpTarget) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"SmtpMailer({self._target!r})"

    def send(self, email: EmailMessage) -> None:
        """Deliver one email; see `send`."""
        send(self._target, email)
