"""Process-wide logging: structlog renders every line, ours and the libraries' (stdlib `logging`),
as JSON or for people, with what is being processed (`tasks.log_context`) on each line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import Processor

from tasks import log_context

LogFormat = Literal["auto", "json", "console"]
FORMAT_ENV = "ORDERFLOW_LOG_FORMAT"
# user:password@ in any URL-like text: the password part is replaced.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]+@")
# password=... in connection strings (libpq keyword/value form).
_PASSWORD_SETTING = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
# LogRecord attributes some libraries add that are not worth a field (uvicorn's ANSI copy).
_DROPPED_EXTRAS = ("color_message",)


def merge_log_context(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add the fields of the envelope or job being processed; explicit fields win."""
    for key, value in log_context.current().items():
        event.setdefault(key, value)
    return event


def add_process_id(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """`pid`: several worker processes share one terminal or file."""
    event["pid"] = os.getpid()
    return event


def drop_noise(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Remove extras that only duplicate the message."""
    for key in _DROPPED_EXTRAS:
        event.pop(key, None)
    return event


def scrub_secrets(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Cut passwords out of URLs in any text field (tracebacks included), should one slip in."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = scrub_text(value)
    return event


def scrub_text(text: str) -> str:
    """`text` with the passwords of URLs (`user:password@`) and of `password=...` cut out."""
    return _PASSWORD_SETTING.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


def resolve_format(log_format: str | None, stream: TextIO) -> Literal["json", "console"]:
    """`json` or `console`: as asked, else console on a terminal and JSON anywhere else."""
    chosen = (log_format or os.environ.get(FORMAT_ENV, "") or "auto").strip().lower()
    if chosen in ("json", "console"):
        return "json" if chosen == "json" else "console"
    if chosen != "auto":
        raise ValueError(f"{FORMAT_ENV} must be auto, json or console")
    return "console" if _isatty(stream) else "json"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def configure_logging(
    level: str = "INFO", log_format: str | None = None, stream: TextIO | None = None
) -> None:
    """Route stdlib logging and structlog through one handler on `stream` (stderr)."""
    stream = stream if stream is not None else sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_log_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process_id,
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_formatter(shared, resolve_format(log_format, stream), stream))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # dramatiq logs every requeue at INFO; keep the noise for debugging.
    logging.getLogger("dramatiq").setLevel(logging.WARNING)
    # The stripe package logs every request and response at INFO: two lines per call.
    logging.getLogger("stripe").setLevel(logging.WARNING)


def _formatter(
    shared: list[Processor], chosen: Literal["json", "console"], stream: TextIO
) -> structlog.stdlib.ProcessorFormatter:
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(
            colors=_isatty(stream), exception_formatter=structlog.dev.plain_traceback
        )
    )
    return structlog.stdlib.ProcessorFormatter(
        # Extras first: a field given explicitly wins over the bound context.
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), drop_noise, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks as plain text (no local variables: they may hold secrets), then scrubbed.
            structlog.processors.format_exc_info,
            scrub_secrets,
            renderer,
        ],
    )
