"""When `orderflow status` says a person is needed, and its exit code.

Each rule reads one section of the report (plain data) and returns an attention item or None.
Exit codes: 0 nothing needs a person; 1 something does; 2 a source (the database or Redis)
could not be read, so the answer is incomplete. docs/operations.md explains each reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OK, ATTENTION, UNKNOWN = 0, 1, 2
Report = dict[str, Any]
Rule = Callable[[Report], dict[str, Any] | None]


def _item(reason: str, count: int, detail: str) -> dict[str, Any] | None:
    return {"reason": reason, "count": count, "detail": detail} if count else None


def confirmation_overdue(report: Report) -> dict[str, Any] | None:
    """Orders past their confirmation deadline and still unconfirmed."""
    makers = report["confirmations"]["manufacturers"]
    count = sum(m["overdue"] for m in makers)
    return _item("confirmation_overdue", count, f"{count} orders overdue and unconfirmed")


def quarantine_held(report: Report) -> dict[str, Any] | None:
    """Refused messages waiting for a decision (replay or drop)."""
    section = report["quarantine"]
    reasons = ", ".join(f"{r} {n}" for r, n in section["by_reason"].items())
    return _item("quarantine_held", section["held"], f"held: {reasons}")


def payment_stuck(report: Report) -> dict[str, Any] | None:
    """Stripe operations unsettled (pending, calling or unclear) for longer than `stuck`."""
    section = report["captures"]
    minutes = f"{section['stuck_after_minutes']:g}"
    detail = f"{section['stuck']} Stripe operations unsettled for over {minutes} min"
    return _item("payment_stuck", section["stuck"], detail)


def capture_failed(report: Report) -> dict[str, Any] | None:
    """Orders whose capture failed, until the desk acts (a new capture, or the hold released)."""
    section = report["captures"]
    numbers = ", ".join(o["number"] for o in section["failed_orders"])
    return _item("capture_failed", section["failed"], f"{section['failed']} failed: {numbers}")


def hold_expiring(report: Report) -> dict[str, Any] | None:
    """Uncaptured card holds lapsing within the warning window."""
    section = report["holds"]
    hours = f"{section['warning_hours']:g}"
    detail = f"{section['expiring']} card holds lapse within {hours} h"
    return _item("hold_expiring", section["expiring"], detail)


def outbox_stuck(report: Report) -> dict[str, Any] | None:
    """Outbox jobs committed longer than `stuck` ago and still not done."""
    section = report["outbox"]
    detail = f"{section['stuck']} jobs pending for over {section['stuck_after_minutes']:g} min"
    return _item("outbox_stuck", section["stuck"], detail)


def scheduler_stale(report: Report) -> dict[str, Any] | None:
    """Periodic jobs with no run for longer than max(3 periods, the floor), or never."""
    late = [j["job"] for j in report["scheduler"]["jobs"] if j["stale"]]
    return _item("scheduler_stale", len(late), "no recent run: " + ", ".join(late))


def ingress_lagging(report: Report) -> dict[str, Any] | None:
    """The oldest unfinished ingress entry has waited longer than `waiting`."""
    section = report["ingress"]
    age = section["oldest_age_s"]
    if age is None or age <= section["waiting_after_minutes"] * 60:
        return None
    detail = f"oldest entry waiting {age:.0f} s; {section['length']} entries unfinished"
    return _item("ingress_lagging", 1, detail)


def queue_waiting(report: Report) -> dict[str, Any] | None:
    """A queue's oldest ready message has waited longer than `waiting` (no worker takes it)."""
    section = report["queues"]
    limit = section["waiting_after_minutes"] * 60
    late = [q for q in section["queues"] if (q["oldest_age_s"] or 0) > limit]
    detail = ", ".join(
        f"{q['queue']}: {q['ready']} ready, oldest {q['oldest_age_s']:.0f} s" for q in late
    )
    return _item("queue_waiting", len(late), detail)


RULES: list[tuple[str, Rule]] = [
    ("confirmations", confirmation_overdue),
    ("quarantine", quarantine_held),
    ("captures", payment_stuck),
    ("captures", capture_failed),
    ("holds", hold_expiring),
    ("outbox", outbox_stuck),
    ("scheduler", scheduler_stale),
    ("ingress", ingress_lagging),
    ("queues", queue_waiting),
]


def attention(report: Report, unknown: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every reason a person is needed: unreadable sources first, then each rule whose section
    could be read."""
    items: list[dict[str, Any]] = [
        {"reason": f"{u['source']}_unreachable", "count": 1, "detail": u["reason"]} for u in unknown
    ]
    for section, rule in RULES:
        if report.get(section) is not None:
            item = rule(report)
            if item is not None:
                items.append(item)
    return items


def exit_code(unknown: list[dict[str, str]], items: list[dict[str, Any]]) -> int:
    """2 when a source could not be read, else 1 when anything needs a person, else 0."""
    if unknown:
        return UNKNOWN
    return ATTENTION if items else OK
