"""Each periodic job's last run, kept in one Redis hash so `orderflow status` can tell a stalled
scheduler. Only liveness lives here: losing the hash loses nothing but this view, for one tick.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

LAST_RUN_KEY = "orderflow:scheduler:last_run"


@dataclass(frozen=True)
class JobRun:
    """One job's run as a scheduler saw it end."""

    job: str
    at: datetime  # when the run ended
    period_s: float  # the job's period on the scheduler that ran it
    owner: str  # host:pid
    outcome: str


def record(client: redis.Redis, runs: Sequence[JobRun]) -> None:
    """Store these runs (one field per job, the newest wins): one command per scheduler pass."""
    if not runs:
        return
    fields = {
        run.job: json.dumps(
            {
                "at": run.at.isoformat(),
                "period_s": run.period_s,
                "owner": run.owner,
                "outcome": run.outcome[:200],
            }
        )
        for run in runs
    }
    client.hset(LAST_RUN_KEY, mapping=fields)  # type: ignore[arg-type]  # redis-py's own stubs


def read(client: redis.Redis, jobs: Sequence[str]) -> dict[str, JobRun]:
    """The last recorded run of each of these jobs (jobs never recorded are absent)."""
    if not jobs:
        return {}
    values: list[bytes | None] = client.hmget(LAST_RUN_KEY, list(jobs))  # type: ignore[assignment]
    runs: dict[str, JobRun] = {}
    for job, raw in zip(jobs, values, strict=True):
        if raw is None:
            continue
        try:
            item = json.loads(raw)
            runs[job] = JobRun(
                job,
                datetime.fromisoformat(item["at"]),
                float(item["period_s"]),
                str(item["owner"]),
                str(item["outcome"]),
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours or damaged: as if never recorded
    return runs
