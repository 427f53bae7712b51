"""`orderflow backlog create|report`: bulk paid-backlog jobs from the command line (job 4)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from models.domain.backlog import BulkOutcome
from workers.settings import Settings

backlog_app = typer.Typer(help="Paid backlog: bulk creation and its reports.", no_args_is_help=True)
SHOWN_SKIPPED = 20


@backlog_app.command("create")
def backlog_create(
    numbers: Annotated[
        list[str] | None, typer.Argument(metavar="NUMBER", help="Order numbers.")
    ] = None,
    all_eligible: Annotated[
        bool, typer.Option("--all-eligible", help="Every order eligible now.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; create nothing.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the job until it is done.")] = True,
    timeout: Annotated[
        float | None, typer.Option(help="Stop following after this many seconds.")
    ] = None,
) -> None:
    """Create paid backlog for the orders (or every eligible one), with a progress bar.

    The job runs on the workers' `bulk` queue; a dry run runs here and changes nothing."""
    if bool(numbers) == all_eligible:
        typer.echo("give order NUMBERs or --all-eligible (not both)", err=True)
        raise typer.Exit(2)
    chosen = list(dict.fromkeys(numbers)) if numbers else None
    console = Console(stderr=True)
    if dry_run:
        _print_outcome(_dry_run(chosen, console))
        return
    job_id = _enqueue(chosen, console, timeout if wait else 0.0)
    if job_id is not None:
        _print_outcome(job_id)


def _dry_run(numbers: list[str] | None, console: Console) -> int:
    from models.db.uow import UnitOfWork
    from workers.cli import backlog
    from workers.cli.context import database
    from workers.runtime import utc_now

    with database(Settings()) as db:
        with UnitOfWork(db, utc_now) as uow:
            job_id = backlog.start(uow, numbers, dry_run=True)
        backlog.run_here(db, job_id, utc_now, console)
    return job_id


def _enqueue(numbers: list[str] | None, console: Console, timeout: float | None) -> int | None:
    """Queue the job; its id once followed to the end, None when left running."""
    from workers.cli import backlog
    from workers.runtime import open_runtime, prepare_database

    settings = Settings()
    prepare_database(settings)
    rt = open_runtime(settings)
    try:
        with rt.new_uow() as uow:
            job_id = backlog.start(uow, numbers, dry_run=False)
        console.print(f"bulk job {job_id} queued")
        done = timeout != 0 and backlog.follow(rt.db, job_id, console, timeout)
    finally:
        rt.close()
    if not done:
        typer.echo(job_id)  # the workers go on; `orderflow backlog report JOB` shows it
        return None
    return job_id


def _print_outcome(job_id: int) -> None:
    from workers.cli import backlog
    from workers.cli.context import database

    with database(Settings()) as db, db.sessions() as session:
        report = backlog.job_report(session, job_id, BulkOutcome.SKIPPED.value, SHOWN_SKIPPED)
    assert report is not None
    console = Console()
    console.print(_headline(report["job"]))
    if report["results"]:
        console.print(_results_table(report["results"], title="skipped (first 20)"))
    console.print(f"full report: orderflow backlog report {job_id}")


def _headline(job: dict[str, Any]) -> str:
    verb = "would create" if job["dry_run"] else "created"
    failed = f"; {job['chunks_failed']} chunks FAILED" if job["chunks_failed"] else ""
    return (
        f"job {job['job_id']} {job['status']}: {job['orders_done']}/{job['orders_total']} "
        f"orders; {verb} {job['created']} ({job['skus_created']} SKUs); already created "
        f"{job['already_created']}; skipped {job['skipped']}; unknown {job['unknown']}{failed}"
    )


def _results_table(rows: Any, title: str) -> Table:
    table = Table("order", "outcome", "reasons", "SKUs", title=title)
    for row in rows:
        table.add_row(row["number"], row["outcome"], ", ".join(row["reasons"]), str(row["skus"]))
    return table


@backlog_app.command("report")
def backlog_report(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The bulk job's id.")],
    outcome: Annotated[
        BulkOutcome | None, typer.Option(help="Only orders with this outcome.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """A job's progress and totals, and what it did with each order (skipped: every reason)."""
    from models.db.bulk_jobs import BulkJob
    from workers.cli import backlog
    from workers.cli.context import database

    chosen = outcome.value if outcome else None
    with database(Settings()) as db, db.sessions() as session:
        job = session.get(BulkJob, job_id)
        if job is None:
            typer.echo(f"no bulk job {job_id}", err=True)
            raise typer.Exit(1)
        if as_json:
            backlog.write_report_json(session, job, chosen, sys.stdout)
            return
        console = Console()
        console.print(_headline(backlog.summary(session, job)))
        console.print(_results_table(backlog.result_rows(session, job_id, chosen), "orders"))
