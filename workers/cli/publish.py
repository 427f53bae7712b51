"""`orderflow publish`: JSON lines of envelopes -> completed, signed, enqueued."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import redis

from workers.queue import client
from workers.settings import Settings

PRODUCER = "orderflow-cli"


@dataclass
class PublishReport:
    """How many lines were sent, and which could not be read."""

    sent: int = 0
    errors: list[str] = field(default_factory=list)


def read_envelopes(lines: Iterable[str], report: PublishReport) -> list[dict[str, Any]]:
    """Parse JSON lines; a bad line is reported by number and not sent."""
    envelopes = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            report.errors.append(f"line {number}: not JSON ({error.msg})")
            continue
        if not isinstance(value, dict):
            report.errors.append(f"line {number}: not a JSON object")
            continue
        envelopes.append(value)
    return envelopes


def publish_lines(
    lines: Iterable[str], settings: Settings, redis_client: redis.Redis
) -> PublishReport:
    """Complete, sign with the first configured key, and enqueue every good line."""
    report = PublishReport()
    keys = settings.signing_key_pairs()
    ready = [
        client.signed(client.complete(raw, PRODUCER), keys) for raw in read_envelopes(lines, report)
    ]
    report.sent = len(client.publish(redis_client, ready)) if ready else 0
    return report


def open_source(path: str) -> TextIO:
    """A file, or standard input for '-'."""
    return sys.stdin if path == "-" else Path(path).open(encoding="utf-8")
