"""`orderflow payments record FILE.csv`: many manual payments applied in one pass, with a result
per row. Re-running the same file records nothing twice (envelope ids derive from the rows)."""

from __future__ import annotations

import csv
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.db.orders import find_order
from models.db.uow import UnitOfWork
from tasks.intake.ingest import IngestPolicy, ingest_one
from tasks.messages.signing import sign
from workers.queue.client import envelope
from workers.queue.wire import dumps

REQUIRED = ("number", "amount", "method", "at")
ROW_NAMESPACE = uuid.UUID("6b1f3c5e-0d4a-4e7b-9a51-3f2d8c9e7a10")
PRODUCER = "orderflow-bulk-payments"


@dataclass(frozen=True)
class RowResult:
    """What happened to one CSV row."""

    line: int
    number: str
    amount: str
    result: str  # recorded | duplicate | refused
    reason: str = ""


def _data(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": row["number"].strip(),
        "amount": int(row["amount"]),
        "method": row["method"].strip(),
        "at": datetime.fromisoformat(row["at"].strip()).isoformat(),
        "notify_customer": row.get("notify_customer", "true").strip().lower() != "false",
    }
    for optional in ("reference", "note", "currency"):
        if (row.get(optional) or "").strip():
            data[optional] = row[optional].strip()
    return data


def read_rows(lines: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header must name at least the required columns."""
    reader = csv.DictReader(lines)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the CSV header lacks: {', '.join(missing)}")
    return [(index, row) for index, row in enumerate(reader, start=2)]


def apply_rows(
    uow: UnitOfWork, rows: list[tuple[int, dict[str, str]]], policy: IngestPolicy
) -> list[RowResult]:
    """Apply every row in `uow`'s transaction (the caller commits, or not for a dry run)."""
    key_id, secret = "bulk-" + secrets.token_hex(4), secrets.token_bytes(32)
    local = IngestPolicy(
        max_bytes=policy.max_bytes,
        keys={**policy.keys, key_id: secret},
        accept_unsigned=policy.accept_unsigned,
        park_for=policy.park_for,
    )
    seen: Counter[str] = Counter()
    results = []
    for line, row in rows:
        number, amount = (row.get("number") or "").strip(), (row.get("amount") or "").strip()
        try:
            data = _data(row)
        except (KeyError, ValueError) as error:
            results.append(RowResult(line, number, amount, "refused", f"bad row: {error}"))
            continue
        if find_order(uow.session, data["number"]) is None:
            results.append(RowResult(line, number, amount, "refused", "unknown_order"))
            continue
        content = dumps(data).decode()
        seen[content] += 1
        envelope_id = str(uuid.uuid5(ROW_NAMESPACE, f"{content}#{seen[content]}"))
        message = envelope("payment.recorded", data, producer=PRODUCER, envelope_id=envelope_id)
        outcome = ingest_one(uow, dumps(sign(message, key_id, secret)), local)
        result = {"applied": "recorded", "duplicate": "duplicate"}.get(outcome.result, "refused")
        results.append(RowResult(line, number, amount, result, outcome.reason))
    return results
