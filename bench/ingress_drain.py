"""The ingress rate of a stream, read off the consumer group (issue 20): when the `orderflow`
group on the ingress stream holds no unread and no pending entry, every envelope published so
far was applied, parked or quarantined (a consumer acknowledges a batch after its commit).

Also an optional sampling profile of the worker processes (py-spy), summed per message type.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tasks.intake.registry import BULK_HANDLERS, HANDLERS
from workers.queue.streams import INGRESS_GROUP, INGRESS_STREAM

POLL_S = 0.01
#: Where `py-spy record` writes one raw profile per phase; unset: no profile.
PROFILE_ENV = "ORDERFLOW_BENCH_PROFILE"
PROFILE_RATE_HZ = 50


@dataclass(frozen=True)
class GroupState:
    """The ingress group's backlog: entries not yet delivered, and delivered but unacknowledged."""

    unread: int
    pending: int

    @property
    def drained(self) -> bool:
        return self.unread == 0 and self.pending == 0


def group_state(client: redis.Redis) -> GroupState | None:
    """XINFO GROUPS for the group's pending count, last-delivered id and lag; when Redis cannot
    tell the lag (entries were deleted: consumers XDEL what they finish), one XRANGE after the
    last-delivered id says whether anything is unread. None: no such group (yet)."""
    try:
        groups: Any = client.xinfo_groups(INGRESS_STREAM)
    except redis.ResponseError:  # no stream yet
        return None
    for group in groups:
        if _text(group["name"]) != INGRESS_GROUP:
            continue
        lag = group.get("lag")
        if lag is None:
            after = "(" + _text(group["last-delivered-id"])
            unread: Any = client.xrange(INGRESS_STREAM, min=after, max="+", count=1)
            lag = len(unread)
        return GroupState(int(lag), int(group["pending"]))
    return None


def wait_drained(redis_url: str, timeout_s: float) -> float:
    """Poll every `POLL_S` until the group is drained; returns `time.monotonic()` then."""
    deadline = time.monotonic() + timeout_s
    with redis.Redis.from_url(redis_url) as client:
        while True:
            state = group_state(client)
            now = time.monotonic()
            if state is not None and state.drained:
                return now
            if now > deadline:
                raise TimeoutError(f"ingress not drained within {timeout_s} s: {state}")
            time.sleep(POLL_S)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def profiled(pid: int, name: str) -> Iterator[Path | None]:
    """`py-spy record` of `pid` and its children (idle threads included: time waiting for
    PostgreSQL counts) while the block runs, when `ORDERFLOW_BENCH_PROFILE` names a folder."""
    folder = os.environ.get(PROFILE_ENV)
    spy = shutil.which("py-spy")
    if not folder or spy is None:
        yield None
        return
    out = Path(folder) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [spy, "record", "--pid", str(pid), "--subprocesses", "--idle", "--nolineno",
            "--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--output", str(out)]  # fmt: skip
    log = out.with_suffix(".log").open("wb")
    spy_proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # attached before the clock starts
    try:
        yield out
    finally:
        spy_proc.send_signal(signal.SIGINT)
        try:
            spy_proc.wait(60)
        except subprocess.TimeoutExpired:
            spy_proc.kill()
            spy_proc.wait(10)
        log.close()


# --- the profile, summed ---------------------------------------------------------------------

_BULK = {fn.__name__: type_ for type_, fn in BULK_HANDLERS.items()}
_ONE = {fn.__name__: type_ for type_, fn in HANDLERS.items()}
# Below `_apply_once` (one batch): what the consumer does besides applying envelopes.
_BATCH_PARTS = {
    "_check": "decode + verify signature",
    "lock_batch": "advisory locks for the batch",
    "_admit": "quarantine refused input",
    "_release_created": "release messages parked for what the batch created",
    "commit": "COMMIT",
    "finish": "XACK + XDEL",
    "record_ingress_batch": "metrics",
    "log_outcomes": "log lines",
    "new_uow": "open unit of work",
    "__exit__": "close unit of work",
    "__enter__": "open unit of work",
    "quarantine_entry": "quarantine malformed entries",
}

# Below `intake_locks._take`: which of the batch's locks it is waiting for (or reading).
_LOCKS = {
    "lock_allocation": "the global stock allocation lock",
    "lock_keys": "advisory intake keys (orders, SKUs, customers, envelopes)",
    "order_facts": "reading the orders' facts",
    "lock_orders": "order rows",
    "lock_stock": "stock rows",
    "stock_skus": "reading stock SKUs",
}


def _frames(stack: str) -> list[str]:
    """Function names, root first (py-spy writes `Class.method (file)`)."""
    return [frame.split(" (", 1)[0].rsplit(".", 1)[-1] for frame in stack.split(";")]


def classify(stack: str) -> str | None:
    """What an ingress consumer thread was doing in one sample; None: not an ingress consumer."""
    if "IngressConsumer._loop (" not in stack:
        return None
    frames = _frames(stack)
    if "ingest_batch" in frames:
        rest = frames[frames.index("ingest_batch") + 1 :]
        if "_apply_one" in rest or "_apply_admitted" in rest:
            handler = next((_ONE[f] for f in rest if f in _ONE), None)
            return f"one by one: {handler}" if handler else "one by one: savepoint + inbox row"
        if "_apply_run" in rest or "_apply_bulk" in rest:
            handler = next((_BULK[f] for f in rest if f in _BULK), None)
            return f"set-based: {handler}" if handler else "set-based: savepoint + inbox rows"
        if "lock_batch" in rest and "_take" in rest:
            taken = rest[rest.index("_take") + 1 :]
            return f"batch locks: {_LOCKS.get(taken[0], taken[0]) if taken else '_take'}"
        part = next((_BATCH_PARTS[f] for f in rest if f in _BATCH_PARTS), None)
        return f"batch: {part or rest[0] if rest else 'ingest_batch'}"
    if "_apply_once" in frames:
        rest = frames[frames.index("_apply_once") + 1 :]
        part = next((_BATCH_PARTS[f] for f in rest if f in _BATCH_PARTS), None)
        return f"batch: {part or (rest[0] if rest else '_apply_once')}"
    if "read_new" in frames:
        return "waiting: XREADGROUP (blocks when nothing is new)"
    if "_resolve" in frames:
        return "resolver: parked messages"
    if "_claim" in frames:
        return "claim idle entries"
    if "apply" in frames:  # BatchRetry's pause between attempts
        return "batch retry pause"
    return "other: " + frames[-1]


def summarize(profile: Path) -> tuple[Counter[str], Counter[str]]:
    """Samples of ingress consumer threads by activity, and the database's share of each:
    samples under psycopg (a round trip to PostgreSQL, or waiting for one)."""
    activity: Counter[str] = Counter()
    in_db: Counter[str] = Counter()
    for line in profile.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        what = classify(stack)
        if what is None:
            continue
        activity[what] += int(count)
        if "psycopg" in stack:
            in_db[what] += int(count)
    return activity, in_db


def profile_table(profile: Path, envelopes: Counter[str], rate_hz: int = PROFILE_RATE_HZ) -> str:
    """Markdown: consumer-thread seconds per activity (samples / rate), its share of the busy
    time, the share spent in psycopg, and envelopes per consumer-thread-second for handlers."""
    activity, in_db = summarize(profile)
    busy = sum(n for what, n in activity.items() if not what.startswith("waiting"))
    lines = [
        "| activity of the ingress consumer threads | thread-s | share of busy | in psycopg "
        "| envelopes | envelopes per thread-s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for what, n in activity.most_common():
        seconds = n / rate_hz
        share = "" if what.startswith("waiting") else f"{n / busy:.1%}" if busy else ""
        type_ = what.split(": ", 1)[1] if what.startswith(("one by one", "set-based")) else ""
        count = envelopes.get(type_, 0)
        per_s = f"{count / seconds:,.0f}" if count and seconds else ""
        lines.append(f"| {what} | {seconds:.1f} | {share} | {in_db[what] / n:.0%} | "
                     f"{count or ''} | {per_s} |")  # fmt: skip
    busy_db = sum(n for what, n in in_db.items() if not what.startswith("waiting"))
    lines.append(
        f"| (busy in all) | {busy / rate_hz:.1f} | 100% | {busy_db / max(busy, 1):.0%} | | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.ingress_drain PROFILE.txt: the table, no counts
    import sys

    print(profile_table(Path(sys.argv[1]), Counter()))
