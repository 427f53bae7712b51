"""Bulk paid-backlog creation (job 4): a request becomes a bulk job cut into chunks on the `bulk`
queue; each chunk decides and creates set-based, records a result per order and counts itself
into the job's progress, all in the transaction that marks its outbox job done.

Same code for the dry run (it records what would happen and changes nothing else).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from models.db import bulk_jobs, paid_backlog
from models.db.orders import record_many
from models.db.uow import JobKind, UnitOfWork
from models.domain.backlog import (
    BulkOutcome,
    Unmet,
    outcome_for,
    reasons_text,
    unmet_conditions,
)
from tasks.outbox.egress import emit_batch
from tasks.outbox.jobs import JobSpec

CHUNK_JOB = JobKind("paid_backlog.chunk", "bulk")
CHUNK_SIZE = 500
CREATED_EVENT = "paid_backlog.created"


def start_job(
    uow: UnitOfWork,
    *,
    order_numbers: Sequence[str] | None,
    dry_run: bool,
    source: str,
    envelope_id: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Create the job and stage its chunks (keys `bulkjob:{id}:chunk:{n}`); its id.

    With no numbers, every order eligible now is taken, streamed in chunks so that memory
    stays flat however many there are; the chunks re-check each order under its row lock.
    """
    request: dict[str, Any] = {"dry_run": dry_run}
    if order_numbers is None:
        request["all_eligible"] = True
    else:
        request["order_numbers"] = list(order_numbers)
    record = bulk_jobs.create_job(
        uow.session, request, source=source, envelope_id=envelope_id, at=uow.clock()
    )
    chunks = orders = 0
    for chunks, part in enumerate(_parts(uow, order_numbers, chunk_size), start=1):
        field = "order_ids" if order_numbers is None else "numbers"
        uow.stage(
            CHUNK_JOB,
            bulk_jobs.chunk_key(record.id, chunks),
            {"job_id": record.id, "chunk": chunks, field: list(part)},
        )
        orders += len(part)
    bulk_jobs.planned(uow.session, record, chunks=chunks, orders=orders, at=uow.clock())
    return record.id


def _parts(
    uow: UnitOfWork, numbers: Sequence[str] | None, size: int
) -> Iterator[Sequence[str] | Sequence[int]]:
    if numbers is not None:
        for start in range(0, len(numbers), size):
            yield numbers[start : start + size]
        return
    yield from paid_backlog.iter_eligible_ids(uow.session, size)


def run_chunk(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """Decide every order of the chunk, create paid backlog for the eligible ones (unless it is a
    dry run) and record the results and the progress."""
    session = uow.session
    record = session.get(bulk_jobs.BulkJob, int(payload["job_id"]))
    if record is None:
        return  # nothing to count into (cannot happen: the job row commits with its chunks)
    numbers: list[str] = list(payload.get("numbers", []))
    found = paid_backlog.ids_by_number(session, numbers) if numbers else {}
    ids = sorted(found.values()) if numbers else [int(i) for i in payload["order_ids"]]
    paid_backlog.lock_orders(session, ids)
    decided = [(i, n, unmet_conditions(f)) for i, n, f in paid_backlog.facts(session, ids)]
    first = numbers[0] if numbers else decided[0][1] if decided else None
    if first is not None and bulk_jobs.has_result(session, record.id, first):
        return  # this chunk ran before (its results are in): nothing is done or counted twice
    eligible = {i: n for i, n, unmet in decided if not unmet}
    if record.dry_run:
        skus = paid_backlog.line_counts(session, list(eligible))
    else:
        skus = _create(uow, eligible, record.id, int(payload["chunk"]))
    rows = _results(record, decided, skus) + _unknown(record, numbers, found)
    bulk_jobs.add_results(session, rows)
    bulk_jobs.count_chunk(session, record.id, _tally(rows), uow.clock())


def _results(
    record: bulk_jobs.BulkJob,
    decided: list[tuple[int, str, tuple[Unmet, ...]]],
    skus: dict[int, int],
) -> list[dict[str, Any]]:
    return [
        {
            "job_id": record.id,
            "number": n,
            "order_id": i,
            "outcome": outcome_for(unmet, dry_run=record.dry_run).value,
            "reasons": reasons_text(unmet),
            "skus": skus.get(i, 0),
        }
        for i, n, unmet in decided
    ]


def _unknown(
    record: bulk_jobs.BulkJob, numbers: list[str], found: dict[str, int]
) -> list[dict[str, Any]]:
    unknown = BulkOutcome.UNKNOWN_ORDER.value
    return [
        {
            "job_id": record.id,
            "number": n,
            "order_id": None,
            "outcome": unknown,
            "reasons": unknown,
            "skus": 0,
        }
        for n in numbers
        if n not in found
    ]


def _create(uow: UnitOfWork, eligible: dict[int, str], job_id: int, chunk: int) -> dict[int, int]:
    """Paid backlog for eligible (locked) orders: SKUs made, regular emptied, lines locked,
    one timeline entry and one `paid_backlog.created` event per order; SKUs made per order."""
    if not eligible:
        return {}
    session, now, order_ids = uow.session, uow.clock(), list(eligible)
    made = paid_backlog.create_paid(session, order_ids, now)
    paid_backlog.empty_regular(session, order_ids)
    paid_backlog.lock_lines(session, order_ids, now)
    per_order: dict[int, list[dict[str, Any]]] = {}
    for order_id, sku, quantity in sorted(made):
        per_order.setdefault(order_id, []).append({"sku": sku, "quantity": quantity})
    # One outbox job per chunk carries its events (one per order, each its own id), so a
    # chunk stages and publishes one job instead of 500.
    emit_batch(
        uow,
        f"paid_backlog:job:{job_id}:chunk:{chunk}",
        CREATED_EVENT,
        [
            (f"paid_backlog:{o}", {"number": eligible[o], "skus": s, "job_id": job_id})
            for o, s in per_order.items()
        ],
    )
    record_many(
        session,
        [
            {
                "order_id": o,
                "at": now,
                "kind": CREATED_EVENT,
                "summary": f"paid backlog: {_listed(s)} (bulk job {job_id}); lines locked",
            }
            for o, s in per_order.items()
        ],
    )
    return {o: len(s) for o, s in per_order.items()}


def _listed(skus: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['quantity']} x {s['sku']}" for s in skus)


def _tally(rows: list[dict[str, Any]]) -> bulk_jobs.ChunkTally:
    by = Counter(str(row["outcome"]) for row in rows)
    made = (BulkOutcome.CREATED.value, BulkOutcome.WOULD_CREATE.value)
    return bulk_jobs.ChunkTally(
        orders=len(rows),
        created=by[made[0]] + by[made[1]],
        skus_created=sum(int(r["skus"]) for r in rows if r["outcome"] in made),
        already_created=by[BulkOutcome.ALREADY_CREATED.value],
        skipped=by[BulkOutcome.SKIPPED.value],
        unknown=by[BulkOutcome.UNKNOWN_ORDER.value],
    )


CHUNK = JobSpec(CHUNK_JOB, fn=run_chunk)
