"""`orderflow status`: what needs a person now, as sections of plain data, with an exit code.

Each section is a small function returning a dict; database sections take (session, now,
options), Redis sections (client, now, options). A source that cannot be read leaves its
sections `None` and is listed under `unknown` (exit code 2); rules in `status_rules` turn the
sections into attention items (exit code 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from models.db import deadlines, status_queries
from scheduler import heartbeat
from workers.cli import backlog, backorders, status_db, status_redis, status_rules
from workers.cli.context import database
from workers.cli.status_options import StatusOptions, iso
from workers.cli.status_scheduler import scheduled_jobs, scheduler
from workers.settings import Settings

__all__ = ["StatusOptions", "gather", "report_now", "unconfigured"]

Section = Callable[[Session, datetime, StatusOptions], dict[str, Any]]
BAD_URL = "the database URL is not valid (ORDERFLOW_DATABASE_URL)"
RedisSection = Callable[[redis.Redis, datetime, StatusOptions], dict[str, Any]]


def _listed(row: deadlines.Listed, now: datetime) -> dict[str, Any]:
    maker, number, deadline, overdue_at = row
    if overdue_at is not None:
        state = "overdue"
    elif deadline is not None and deadline <= now:
        state = "due"  # past its deadline; the next scan marks it
    else:
        state = "due_soon"
    return {
        "manufacturer_id": maker,
        "number": number,
        "state": state,
        "deadline": iso(deadline),
        "overdue_at": iso(overdue_at),
    }


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
            {
                "manufacturer_id": maker,
                "name": names.get(maker, ""),
                "overdue": overdue.get(maker, 0),
                "due_soon": soon.get(maker, 0),
                "orders": [o for o in listed if o["manufacturer_id"] == maker],
            }
            for maker in makers
        ],
    }


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
    "captures": status_db.captures,
    "holds": status_db.holds,
    "quarantine": status_db.quarantine,
    "outbox": status_db.outbox,
    "bulk_jobs": bulk_jobs,
    "restocks": restocks,
}
REDIS_SECTIONS: dict[str, RedisSection] = {
    "queues": status_redis.queues,
    "ingress": status_redis.ingress,
}


def _database_problem(error: BaseException, settings: Settings) -> str:
    """Why the database could not be read, without the URL or its password."""
    if isinstance(error, SystemExit):
        return str(error.code)  # our own message: the schema is behind
    if isinstance(error, ArgumentError):  # e.g. an unknown dialect: its message names the URL
        return BAD_URL
    text = str(getattr(error, "orig", None) or error).splitlines()[0] if str(error) else ""
    url = settings.effective_database_url()
    password = make_url(url).password  # parsed before: valid
    for secret in (url, password):
        if secret:
            text = text.replace(str(secret), "***")
    return f"database unreachable ({type(error).__name__}: {text[:200]})"


def _read_database(
    settings: Settings, now: datetime, options: StatusOptions
) -> tuple[dict[str, Any], dict[str, datetime] | None, str | None]:
    try:
        make_url(settings.effective_database_url())
    except (ArgumentError, ValueError):
        return dict.fromkeys(SECTIONS), None, BAD_URL
    try:
        with database(settings) as db, db.sessions() as session:
            sections = {name: s(session, now, options) for name, s in SECTIONS.items()}
            return sections, status_queries.last_claimed_ticks(session), None
    except (SQLAlchemyError, SystemExit, OSError) as error:
        return dict.fromkeys(SECTIONS), None, _database_problem(error, settings)


def _read_redis(
    settings: Settings, now: datetime, options: StatusOptions
) -> tuple[dict[str, Any], dict[str, heartbeat.JobRun] | None, str | None]:
    try:
        with status_redis.client_for(settings) as client:
            sections = {name: s(client, now, options) for name, s in REDIS_SECTIONS.items()}
            runs = heartbeat.read(client, [job.name for job in options.jobs])
            return sections, runs, None
    except (redis.RedisError, OSError) as error:
        # redis-py's messages name the host and port, never the password.
        reason = f"redis unreachable ({type(error).__name__}: {str(error)[:200]})"
        return dict.fromkeys(REDIS_SECTIONS), None, reason


def unconfigured(error: ValidationError, now: datetime) -> dict[str, Any]:
    """The report when the settings themselves are invalid: nothing could be read (exit 2).
    Names the settings, never their values (they may hold passwords)."""
    names = ", ".join(sorted({f"ORDERFLOW_{str(e['loc'][0]).upper()}" for e in error.errors()}))
    reason = f"invalid configuration: {names}"
    return {
        "at": now.isoformat(),
        "verdict": "unknown",
        "exit_code": status_rules.UNKNOWN,
        "attention": [{"reason": "configuration_invalid", "count": 1, "detail": reason}],
        "unknown": [{"source": "configuration", "reason": reason}],
        **dict.fromkeys([*REDIS_SECTIONS, *SECTIONS, "scheduler"]),
    }


def gather(settings: Settings, now: datetime, options: StatusOptions) -> dict[str, Any]:
    """The whole report: verdict, exit code, attention items, unreadable sources, sections."""
    db_sections, claimed, db_problem = _read_database(settings, now, options)
    redis_sections, runs, redis_problem = _read_redis(settings, now, options)
    unknown = [
        {"source": source, "reason": reason}
        for source, reason in (("database", db_problem), ("redis", redis_problem))
        if reason is not None
    ]
    sections: dict[str, Any] = {**redis_sections, **db_sections}
    sections["scheduler"] = scheduler(runs, claimed, now, options)
    items = status_rules.attention(sections, unknown)
    code = status_rules.exit_code(unknown, items)
    verdict = {0: "ok", 1: "attention", 2: "unknown"}[code]
    return {
        "at": now.isoformat(),
        "verdict": verdict,
        "exit_code": code,
        "attention": items,
        "unknown": unknown,
        **sections,
    }


def report_now(options: StatusOptions) -> dict[str, Any]:
    """The report now, with this process's settings (the hold warning window and the scheduler's
    jobs come from them); an invalid configuration gives an `unknown` report."""
    now = datetime.now(UTC)
    try:
        settings = Settings()
    except ValidationError as error:
        return unconfigured(error, now)
    hold_warning = timedelta(hours=settings.hold_warning_h)
    configured = replace(options, hold_warning=hold_warning, jobs=scheduled_jobs(settings))
    return gather(settings, now, configured)
