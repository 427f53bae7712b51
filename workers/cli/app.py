"""The `orderflow` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from models.db.uow import QUEUES
from workers.cli.backlog_app import backlog_app
from workers.cli.records import (
    backorders_app,
    customer_app,
    export_app,
    order_app,
    payments_app,
    quarantine_app,
)
from workers.settings import Settings

app = typer.Typer(help="orderflow: order follow-up work, done exactly once.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(order_app, name="order")
app.add_typer(export_app, name="export")
app.add_typer(customer_app, name="customer")
app.add_typer(payments_app, name="payments")
app.add_typer(backorders_app, name="backorders")
app.add_typer(backlog_app, name="backlog")


@app.command()
def worker(
    processes: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    threads: Annotated[int | None, typer.Option(help="Threads per process.")] = None,
    queue: Annotated[list[str] | None, typer.Option(help="Queue to consume (repeatable).")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run queue workers; each dead process is restarted."""
    from workers.supervisor import supervise

    settings = Settings()
    supervise(
        processes or settings.worker_processes,
        threads or settings.worker_threads,
        queue or list(QUEUES),
        log_level,
    )


@app.command()
def scheduler(log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO") -> None:
    """Run periodic jobs (safe to run two at once)."""
    from workers.scheduler_process import run

    run(log_level)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations (Alembic)."""
    from models.db import migrate

    settings = Settings()
    migrate.upgrade(settings.effective_database_url(), revision)
    typer.echo(f"database at {revision}")


@app.command()
def demo() -> None:
    """Run the whole system end to end on embedded defaults and print a report."""
    from workers.demo.run import run_demo

    raise typer.Exit(run_demo())


@app.command()
def publish(
    source: Annotated[str, typer.Argument(help="File of JSON lines, or - for stdin.")] = "-",
) -> None:
    """Sign and enqueue envelopes (one JSON object per line; id and time filled in)."""
    from workers.cli.context import redis_connection
    from workers.cli.publish import open_source, publish_lines

    settings = Settings()
    with open_source(source) as lines, redis_connection(settings) as client:
        report = publish_lines(lines, settings, client)
    for error in report.errors:
        typer.echo(error, err=True)
    typer.echo(f"published {report.sent} envelopes")
    if report.errors:
        raise typer.Exit(1)


@app.command()
def webhooks(log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO") -> None:
    """Serve the Stripe webhook endpoint (POST /stripe/webhook); needs the webhook secret."""
    from workers.cli.webhooks import NotConfiguredError, check, serve

    settings = Settings()
    try:
        check(settings)
    except NotConfiguredError as error:
        typer.echo(f"orderflow webhooks: {error}", err=True)
        raise typer.Exit(2) from None
    serve(settings, log_level)


@app.command()
def status(
    soon_hours: Annotated[
        float, typer.Option(help="Count orders due within this many hours as due soon.")
    ] = 24.0,
    limit: Annotated[int, typer.Option(help="List at most this many items of each kind.")] = 50,
    stuck_minutes: Annotated[
        float, typer.Option(help="A Stripe operation or outbox job open this long needs a person.")
    ] = 15.0,
    waiting_minutes: Annotated[
        float, typer.Option(help="A queued message or ingress entry this old needs a person.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """What needs a person: queues, ingress, quarantine, confirmations, captures, holds, bulk
    jobs, outbox, scheduler. Exit code 0 ok, 1 needs attention, 2 cannot tell."""
    import json
    from datetime import timedelta

    from rich.console import Console

    from workers.cli.status import StatusOptions, report_now
    from workers.cli.status_view import print_status

    options = StatusOptions(
        soon=timedelta(hours=soon_hours),
        limit=limit,
        stuck=timedelta(minutes=stuck_minutes),
        waiting=timedelta(minutes=waiting_minutes),
    )
    report = report_now(options)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_status(Console(), report)
    raise typer.Exit(report["exit_code"])


@app.command()
def schema() -> None:
    """Print the JSON Schema of the message catalogue."""
    import json

    from tasks.messages.schema import catalogue_schema

    typer.echo(json.dumps(catalogue_schema(), indent=2, ensure_ascii=False))


def main() -> None:
    """Console-script entry point."""
    app()
