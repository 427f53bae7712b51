"""Bench runner: starts its own Redis and PostgreSQL, runs the scenarios, writes RESULTS.md.

uv run python -m bench.run [--messages N] [--orders N] [--payments N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.backlog import backlog_scenario
from bench.backorders import backorders_scenario
from bench.baseline import BenchContext, ResultRow, drain_seconds
from bench.capture import capture_scenario
from bench.deadlines import deadlines_scenario
from bench.ingress import ingress_scenario
from bench.ledger import ledger_scenario
from bench.soak import soak_scenario
from tests.services import PostgresServer, RedisServer

Scenario = Callable[[BenchContext], list[ResultRow]]
RESULTS = Path(__file__).with_name("RESULTS.md")


def baseline_scenario(ctx: BenchContext) -> list[ResultRow]:
    """Bare dramatiq: a no-op actor, and an actor doing one INSERT per message.

    The baseline uses orderflow's default worker shape; one process with the same threads is
    measured too, for reference only.
    """
    base = ctx.baseline()
    shape = f"{base.processes} processes x {base.threads} threads"
    rows = [
        ResultRow(
            "baseline",
            "bare dramatiq, no-op",
            ctx.messages,
            ctx.messages / base.noop_per_s,
            base.noop_per_s / base.insert_per_s,
            shape,
        ),
        ResultRow(
            "baseline",
            "bare dramatiq, 1 INSERT/msg",
            ctx.messages,
            ctx.messages / base.insert_per_s,
            1.0,
            shape,
        ),
    ]
    for kind, case in (("noop", "no-op"), ("insert", "1 INSERT/msg")):
        seconds = drain_seconds(
            ctx.redis_url, ctx.database_url, kind, ctx.messages, processes=1, threads=base.threads
        )
        rows.append(
            ResultRow(
                "baseline",
                f"bare dramatiq, {case}",
                ctx.messages,
                seconds,
                ctx.messages / seconds / base.insert_per_s,
                f"1 process x {base.threads} threads (reference)",
            )
        )
    return rows


#: Scenarios run in this order; later benchmarks add an entry here.
SCENARIOS: dict[str, Scenario] = {
    "baseline": baseline_scenario,
    "ingress": ingress_scenario,
    "ledger": ledger_scenario,
    "backorders": backorders_scenario,
    "deadlines": deadlines_scenario,
    "backlog": backlog_scenario,
    "capture": capture_scenario,
    "soak": soak_scenario,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--messages", type=int, default=5000, help="messages per measurement")
    parser.add_argument("--orders", type=int, default=10_000, help="orders the ledger pays")
    parser.add_argument("--payments", type=int, default=100_000, help="ledger payments")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="report file to write")
    args = parser.parse_args(argv)
    for option in ("messages", "orders", "payments"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # A stopped run still stops the workers and servers it started (its `finally` blocks run).
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    names = args.only or list(SCENARIOS)
    sized = partial(ledger_scenario, orders=args.orders, payments=args.payments)
    scenarios: dict[str, Scenario] = {**SCENARIOS, "ledger": sized}
    console = Console(width=None if sys.stdout.isatty() else 130)
    with tempfile.TemporaryDirectory(prefix="orderflow-bench-") as workdir:
        redis_server = RedisServer.start(Path(workdir))
        postgres_server = PostgresServer.start(Path(workdir))
        try:
            ctx = BenchContext(
                redis_server.url, postgres_server.url, args.messages, redis_server, postgres_server
            )
            rows: list[ResultRow] = []
            for name in names:
                console.print(f"[bold]running {name}[/] ({args.messages} messages)")
                rows.extend(scenarios[name](ctx))
            machine = describe_machine(redis_server, postgres_server)
        finally:
            redis_server.stop()
            postgres_server.stop()
    console.print(_table(rows))
    command = shlex.join(["uv", "run", "python", "-m", "bench.run", *sys.argv[1:]])
    args.results.write_text(render_report(rows, machine, command))
    console.print(f"wrote {args.results}")
    return 0


def describe_machine(redis_server: RedisServer, postgres_server: PostgresServer) -> list[str]:
    """Where the figures come from, one fact per line."""
    with redis_server.client() as client:
        redis_version = str(client.info("server")["redis_version"])
    with postgres_server.connect() as conn:
        row = conn.execute("show server_version").fetchone()
    postgres_version = str(row[0]) if row else "?"
    return [
        f"CPUs (nproc): {len(os.sched_getaffinity(0))}; CPU: {_cpu_model()}",
        f"OS: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; dramatiq {version('dramatiq')}; "
        f"redis-py {version('redis')}; SQLAlchemy {version('sqlalchemy')}; "
        f"psycopg {version('psycopg')}",
        f"Redis {redis_version} ({redis_server.executable})",
        f"PostgreSQL {postgres_version} ({postgres_server.bin_dir}; fsync=off, "
        "full_page_writes=off, synchronous_commit=on)",
    ]


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else "unknown"


def _ratio(row: ResultRow) -> str:
    return "" if row.ratio is None else f"{row.ratio:.2f}"


def _table(rows: list[ResultRow]) -> Table:
    table = Table(title="orderflow bench")
    for column in ("scenario", "case", "messages", "seconds", "msg/s", "vs bare insert", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.scenario,
            row.case,
            str(row.messages),
            f"{row.seconds:.2f}",
            f"{row.per_s:,.0f}",
            _ratio(row),
            row.note,
        )
    return table


def render_report(rows: list[ResultRow], machine: list[str], command: str) -> str:
    """RESULTS.md: date, machine, the command that reproduces it, the figures."""
    lines = [
        "# Bench results",
        "",
        "Written by `bench/run.py`; every run overwrites this file. Figures are from one run,",
        "on one machine, with Redis and PostgreSQL started by the runner next to the workers.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `{command}`",
        *(f"- {fact}" for fact in machine),
        "",
        "| scenario | case | messages | seconds | msg/s | vs bare insert | note |",
        "|---|---|---:|---:|---:|---:|---|",
        *(
            f"| {r.scenario} | {r.case} | {r.messages} | {r.seconds:.2f} | {r.per_s:,.0f} | "
            f"{_ratio(r)} | {r.note} |"
            for r in rows
        ),
        "",
        "How the baseline is measured: N messages are enqueued first (dramatiq's own Lua",
        "script, pipelined), then worker processes (`dramatiq.Worker` in a fresh interpreter",
        "each, the shape `orderflow worker` has by default) are booted and released together;",
        "the clock runs from their start until Redis holds no message of the queue (every one",
        "acknowledged). The INSERT actor commits one row per message (SQLAlchemy Core), and the",
        "row count is checked afterwards. 'vs bare insert' is msg/s divided by that rate.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
