"""`orderflow status`: what needs attention now, as sections of plain data.

Each section is a function (session, now, options) -> dict; the CLI prints them as tables or
as JSON. Sections for queues, captures and restocks are added to SECTIONS as they land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from models.db import deadlines
from workers.commands import backlog, backorders


@dataclass(frozen=True)
class StatusOptions:
    """What the sections look at: the soon-due horizon and how many orders to list per kind."""

    soon: timedelta = timedelta(hours=24)
    limit: int = 50


Section = Callable[[Session, datetime, StatusOptions], dict[str, Any]]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _listed(row: deadlines.Listed, now: datetime) -> dict[str, Any]:
    maker, number, deadline, overdue_at = row
    if overdue_at is not None:
        state = "overdue"
    elif deadline is not None and deadline <= now:
        state = "due"  # past its deadline; the next scan marks it
    else:
        state = "due_soon"
    return {"manufacturer_id": maker, "number": number, "state": state,
            "deadline": _iso(deadline), "overdue_at": _iso(overdue_at)}  # fmt: skip


def confirmations(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Overdue (still unconfirmed) and soon-due confirmations per manufacturer: counts, and the
    first `limit` orders of each kind, earliest deadline first."""
    until = now + options.soon
    overdue = deadlines.breach_counts(session)
    soon = deadlines.due_soon_counts(session, until)
    makers = sorted(set(overdue) | set(soon))
    names = deadlines.manufacturer_names(session, makers)
    rows = [
        *deadlines.open_breaches(session, options.limit),
        *deadlines.due_soon(session, until, options.limit),
    ]
    listed = [_listed(row, now) for row in rows]
    return {
        "horizon_hours": options.soon.total_seconds() / 3600,
        "manufacturers": [
            {"manufacturer_id": maker, "name": names.get(maker, ""),
             "overdue": overdue.get(maker, 0), "due_soon": soon.get(maker, 0),
             "orders": [o for o in listed if o["manufacturer_id"] == maker]}
            for maker in makers
        ],
    }  # fmt: skip


def restocks(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """The newest restocks: what each released and skipped (the decision log's summary)."""
    del now  # a log of what happened; nothing in it is due
    return {"recent": backorders.recent_restocks(session, limit=min(options.limit, 10))}


def bulk_jobs(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Bulk jobs in progress (with how far they got), then the newest finished ones."""
    del now
    return backlog.status_section(session, limit=min(options.limit, 10))


SECTIONS: dict[str, Section] = {
    "confirmations": confirmations,
    "restocks": restocks,
    "bulk_jobs": bulk_jobs,
}


def collect(session: Session, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """Every section, keyed by name, with the time it describes."""
    return {
        "at": now.isoformat(),
        **{name: s(session, now, options) for name, s in SECTIONS.items()},
    }


def print_status(console: Console, report: dict[str, Any]) -> None:
    """The report as tables."""
    section = report["confirmations"]
    hours = f"{section['horizon_hours']:g}"
    summary = Table("manufacturer", "name", "overdue", f"due within {hours} h",
                    title=f"Confirmations at {report['at']}")  # fmt: skip
    orders = Table("manufacturer", "order", "deadline", "state", "marked overdue", title="Orders")
    for maker in section["manufacturers"]:
        summary.add_row(maker["manufacturer_id"], maker["name"], str(maker["overdue"]),
                        str(maker["due_soon"]))  # fmt: skip
        for order in maker["orders"]:
            orders.add_row(maker["manufacturer_id"], order["number"], order["deadline"] or "",
                           order["state"].replace("_", " "), order["overdue_at"] or "")  # fmt: skip
    console.print(summary)
    if orders.row_count:
        console.print(orders)
    else:
        console.print("no confirmations overdue or due soon")
    _print_restocks(console, report["restocks"]["recent"])
    _print_bulk_jobs(console, report["bulk_jobs"]["jobs"])


def _print_restocks(console: Console, recent: list[dict[str, Any]]) -> None:
    table = Table("restock", "sku", "received", "policy", "considered", "released", "skipped",
                  "free after", "at", title="Recent restocks")  # fmt: skip
    for r in recent:
        table.add_row(str(r["restock_id"]), r["sku"], str(r["received"]), r["policy"],
                      str(r["considered"]), str(r["released"]), str(r["skipped"]),
                      str(r["available_after"]), r["at"])  # fmt: skip
    console.print(table if recent else "no restocks yet")


def _print_bulk_jobs(console: Console, jobs: list[dict[str, Any]]) -> None:
    table = Table("job", "kind", "status", "orders", "chunks", "created", "SKUs", "already",
                  "skipped", "unknown", "failed chunks", "started", title="Bulk jobs")  # fmt: skip
    for j in jobs:
        kind = j["kind"] + (" (dry run)" if j["dry_run"] else "")
        table.add_row(str(j["job_id"]), kind, j["status"],
                      f"{j['orders_done']}/{j['orders_total']}",
                      f"{j['chunks_done']}/{j['chunks_total']}", str(j["created"]),
                      str(j["skus_created"]), str(j["already_created"]), str(j["skipped"]),
                      str(j["unknown"]), str(j["chunks_failed"]), j["created_at"])  # fmt: skip
    console.print(table if jobs else "no bulk jobs yet")
