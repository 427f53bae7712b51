"""The `orderflow` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from tasks.jobs import QUEUES
from workers.settings import Settings

app = typer.Typer(help="orderflow: order follow-up work, done exactly once.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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
    from scheduler.process import run

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
    from workers.demo import run_demo

    raise typer.Exit(run_demo())


def main() -> None:
    """Console-script entry point."""
    app()
