"""`orderflow status` on one screen: the verdict and what needs a person, then each section."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

VERDICT_STYLE = {"ok": "green", "attention": "yellow", "unknown": "red"}


def _cells(*values: Any) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _ago(seconds: float | None) -> str:
    """An age for the eye: 42 s, 17 min, 3.5 h."""
    if seconds is None:
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if abs(seconds) < 7200 else f"{seconds / 3600:.1f} h"


def print_status(console: Console, report: dict[str, Any]) -> None:
    """The report as a headline, the attention list and one table per section."""
    verdict = report["verdict"]
    console.print(
        f"[bold {VERDICT_STYLE[verdict]}]{verdict.upper()}[/] at {report['at']} "
        f"(exit code {report['exit_code']})"
    )
    for item in report["attention"]:
        console.print(f"  [bold]{item['reason']}[/] ({item['count']}): {item['detail']}")
    printers = [
        ("queues", _queues),
        ("ingress", _ingress),
        ("confirmations", _confirmations),
        ("captures", _captures),
        ("holds", _holds),
        ("quarantine", _quarantine),
        ("outbox", _outbox),
        ("scheduler", _scheduler),
        ("bulk_jobs", _bulk_jobs),
        ("restocks", _restocks),
    ]
    for name, printer in printers:
        if report.get(name) is None:
            console.print(f"[red]{name}: unknown[/]")
        else:
            printer(console, report[name])


def _queues(console: Console, section: dict[str, Any]) -> None:
    table = Table(
        "queue", "ready", "in flight", "delayed", "dead-lettered", "oldest waiting", title="Queues"
    )
    for q in section["queues"]:
        table.add_row(
            *_cells(
                q["queue"],
                q["ready"],
                q["in_flight"],
                q["delayed"],
                q["dead_lettered"],
                _ago(q["oldest_age_s"]),
            )
        )
    console.print(table)


def _ingress(console: Console, s: dict[str, Any]) -> None:
    console.print(
        f"Ingress: {s['length']} entries unfinished ({s['undelivered']} undelivered, "
        f"{s['pending']} taken by {s['consumers']} consumers); oldest waiting "
        f"{_ago(s['oldest_age_s'])}"
    )


def _confirmations(console: Console, section: dict[str, Any]) -> None:
    hours = f"{section['horizon_hours']:g}"
    summary = Table(
        "manufacturer", "name", "overdue", f"due within {hours} h", title="Confirmations"
    )
    orders = Table("manufacturer", "order", "deadline", "state", "marked overdue", title="Orders")
    for maker in section["manufacturers"]:
        summary.add_row(
            *_cells(maker["manufacturer_id"], maker["name"], maker["overdue"], maker["due_soon"])
        )
        for o in maker["orders"]:
            state = o["state"].replace("_", " ")
            orders.add_row(
                *_cells(
                    maker["manufacturer_id"], o["number"], o["deadline"], state, o["overdue_at"]
                )
            )
    console.print(summary)
    console.print(orders if orders.row_count else "no confirmations overdue or due soon")


def _captures(console: Console, section: dict[str, Any]) -> None:
    table = Table("kind", "status", "count", "oldest", title="Stripe operations not settled")
    for c in section["unsettled"]:
        table.add_row(*_cells(c["kind"], c["status"], c["count"], c["oldest_created_at"]))
    console.print(table if table.row_count else "no Stripe operation waiting")
    for o in section["oldest_stuck"]:
        console.print(
            f"  stuck: {o['kind']} of {o['number']} {o['status']} since "
            f"{o['created_at']}, {o['attempts']} attempts: "
            f"{o['last_error'] or ''}"
        )
    for o in section["failed_orders"]:
        console.print(f"  capture failed: {o['number']} since {o['since']}: {o['reason']}")


def _holds(console: Console, section: dict[str, Any]) -> None:
    table = Table(
        "order",
        "lapses at",
        "hours left",
        "fulfillment",
        "amount",
        title=f"Card holds lapsing within {section['warning_hours']:g} h",
    )
    for h in section["orders"]:
        amount = f"{h['total']} {h['currency']}"
        table.add_row(
            *_cells(
                h["number"], h["capture_before"], h["hours_left"], h["fulfillment_status"], amount
            )
        )
    console.print(table if table.row_count else "no card hold lapsing soon")


def _quarantine(console: Console, s: dict[str, Any]) -> None:
    reasons = ", ".join(f"{r}: {n}" for r, n in s["by_reason"].items()) or "none"
    console.print(f"Quarantine: {s['held']} held ({reasons}); {s['parked']} parked")


def _outbox(console: Console, s: dict[str, Any]) -> None:
    jobs = ", ".join(f"{j}: {n}" for j, n in s["by_job"].items()) or "none"
    console.print(
        f"Outbox: {s['pending']} jobs pending ({jobs}); oldest {_ago(s['oldest_age_s'])};"
        f" {s['stuck']} stuck; {s['failed']} failed for good"
    )


def _scheduler(console: Console, section: dict[str, Any]) -> None:
    table = Table("job", "every", "last run", "late after", "by", "outcome", title="Scheduler")
    for j in section["jobs"]:
        mark = {True: " LATE", False: "", None: " ?"}[j["stale"]]
        last = "never" if j["age_s"] is None else f"{_ago(j['age_s'])} ago"
        table.add_row(
            *_cells(
                j["job"],
                _ago(j["period_s"]),
                last + mark,
                _ago(j["stale_after_s"]),
                j["owner"],
                j["outcome"],
            )
        )
    console.print(table)


def _bulk_jobs(console: Console, section: dict[str, Any]) -> None:
    table = Table(
        "job",
        "kind",
        "status",
        "orders",
        "chunks",
        "created",
        "SKUs",
        "already",
        "skipped",
        "unknown",
        "failed chunks",
        "started",
        title="Bulk jobs",
    )
    for j in section["jobs"]:
        kind = j["kind"] + (" (dry run)" if j["dry_run"] else "")
        table.add_row(
            *_cells(
                j["job_id"],
                kind,
                j["status"],
                f"{j['orders_done']}/{j['orders_total']}",
                f"{j['chunks_done']}/{j['chunks_total']}",
                j["created"],
                j["skus_created"],
                j["already_created"],
                j["skipped"],
                j["unknown"],
                j["chunks_failed"],
                j["created_at"],
            )
        )
    console.print(table if section["jobs"] else "no bulk jobs yet")


def _restocks(console: Console, section: dict[str, Any]) -> None:
    table = Table(
        "restock",
        "sku",
        "received",
        "policy",
        "considered",
        "released",
        "skipped",
        "free after",
        "at",
        title="Recent restocks",
    )
    for r in section["recent"]:
        table.add_row(
            *_cells(
                r["restock_id"],
                r["sku"],
                r["received"],
                r["policy"],
                r["considered"],
                r["released"],
                r["skipped"],
                r["available_after"],
                r["at"],
            )
        )
    console.print(table if section["recent"] else "no restocks yet")
