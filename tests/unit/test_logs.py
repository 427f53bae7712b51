"""Log set-up: JSON lines with the fields of what is being processed, console lines for people,
stdlib and dramatiq loggers rendered the same way, and no password of a URL in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tasks import log_context
from tasks.messages.catalogue import decode
from tests import factories as f
from workers.logs import configure_logging, resolve_format

ENVELOPE_ID = "7f1d2c9e-3b4a-4c5d-8e6f-0a1b2c3d4e5f"


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _placed(correlation_id: str | None = None) -> Any:
    raw = f.order("M9681118", envelope_id=ENVELOPE_ID)
    if correlation_id is not None:
        raw["correlation_id"] = correlation_id
    return decode(f.body(raw), 256 * 1024)


def test_a_json_line_carries_the_envelope_fields_bound_while_it_is_processed() -> None:
    # Given JSON logs and an order.placed envelope with a producer's correlation id
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    fields = log_context.envelope_fields(_placed("checkout-42"), ENVELOPE_ID)
    # When a stdlib logger logs while it is processed, and once more after
    token = log_context.enter(fields)
    logging.getLogger("orderflow.test").info("applying %s", "it")
    log_context.leave(token)
    logging.getLogger("orderflow.test").info("idle")
    # Then the first line has exactly the bound fields, the second none of them
    first, second = _lines(stream)
    assert {k: first[k] for k in ("event", "level", "logger")} == {
        "event": "applying it",
        "level": "info",
        "logger": "orderflow.test",
    }
    assert {k: first[k] for k in ("envelope_id", "type", "order", "correlation_id")} == {
        "envelope_id": ENVELOPE_ID,
        "type": "order.placed",
        "order": "M9681118",
        "correlation_id": "checkout-42",
    }
    assert sorted(set(second) - {"timestamp", "pid"}) == ["event", "level", "logger"]


def test_without_a_correlation_id_the_envelope_id_is_the_correlation_id() -> None:
    # Given an envelope without a correlation id
    fields = log_context.envelope_fields(_placed(), ENVELOPE_ID)
    # Then the envelope id stands in for it
    assert dict(fields) == {
        "envelope_id": ENVELOPE_ID,
        "type": "order.placed",
        "order": "M9681118",
        "correlation_id": ENVELOPE_ID,
    }


def test_dramatiq_and_structlog_lines_come_out_the_same_way_and_explicit_fields_win() -> None:
    # Given JSON logs and a job scope
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    token = log_context.enter({"job": "notification.send", "job_id": 7, "correlation_id": "k"})
    # When dramatiq's logger, a structlog logger and an explicit field log inside it
    logging.getLogger("dramatiq.worker.WorkerThread").error("Failed to process message")
    structlog.get_logger("orderflow.native").warning("native", outcome="retried")
    logging.getLogger("orderflow.test").warning("explicit", extra={"correlation_id": "mine"})
    log_context.leave(token)
    # Then all three are JSON lines with the job's fields
    lines = _lines(stream)
    assert [(x["logger"], x["level"], x["job"], x["job_id"]) for x in lines] == [
        ("dramatiq.worker.WorkerThread", "error", "notification.send", 7),
        ("orderflow.native", "warning", "notification.send", 7),
        ("orderflow.test", "warning", "notification.send", 7),
    ]
    assert (lines[1]["outcome"], lines[2]["correlation_id"]) == ("retried", "mine")


def test_console_format_is_for_people_not_json() -> None:
    # Given console logs
    stream = io.StringIO()
    configure_logging("INFO", "console", stream)
    token = log_context.enter({"envelope_id": ENVELOPE_ID, "type": "order.placed"})
    # When a line is logged
    logging.getLogger("orderflow.test").info("applied")
    log_context.leave(token)
    # Then it is one readable line, not JSON, with the fields as key=value
    line = stream.getvalue().rstrip("\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "applied" in line
    assert f"envelope_id={ENVELOPE_ID}" in line
    assert "type=order.placed" in line
    assert "\n" not in line


def test_auto_is_console_on_a_terminal_and_json_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERFLOW_LOG_FORMAT", raising=False)
    assert resolve_format("auto", FakeTerminal()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", FakeTerminal()) == "json"
    monkeypatch.setenv("ORDERFLOW_LOG_FORMAT", "console")
    assert resolve_format(None, io.StringIO()) == "console"


def test_passwords_in_urls_and_tracebacks_are_cut_out() -> None:
    # Given JSON logs
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    # When a URL with a password is logged, and an exception whose message holds one
    logging.getLogger("orderflow.test").warning("cannot reach redis://:hunter2@cache:6379/0")
    try:
        raise ConnectionError("smtp://desk:s3cret-pw@mail:25 refused")
    except ConnectionError:
        logging.getLogger("orderflow.test").exception("send failed")
    # Then neither password is written, and the traceback is there as text
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "s3cret-pw" not in text
    lines = _lines(stream)
    assert lines[0]["event"] == "cannot reach redis://:***@cache:6379/0"
    assert lines[1]["exception"].startswith("Traceback (most recent call last):")
    assert "smtp://desk:***@mail:25 refused" in lines[1]["exception"]


def test_a_line_below_the_level_is_not_written() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logging.getLogger("orderflow.test").debug("hidden")
    logging.getLogger("dramatiq").info("requeued")  # dramatiq is kept at WARNING
    assert stream.getvalue() == ""
