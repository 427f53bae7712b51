"""CLI sub-commands that look at or act on stored records: quarantine, order, export."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.domain.backorders import ReleasePolicy
from workers.settings import Settings

quarantine_app = typer.Typer(
    help="Refused messages: list, show, replay, drop.", no_args_is_help=True
)
order_app = typer.Typer(help="Orders.", no_args_is_help=True)
export_app = typer.Typer(help="Export records as CSV or JSON lines.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers and their balances.", no_args_is_help=True)
payments_app = typer.Typer(help="Manual payments in bulk.", no_args_is_help=True)


class Format(StrEnum):
    """Export formats."""

    CSV = "csv"
    JSONL = "jsonl"


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
) -> None:
    """Held messages, newest first, with counts by reason."""
    from models.db import status_queries
    from workers.cli import quarantine
    from workers.cli.context import database

    with database(Settings()) as db, db.sessions() as session:
        table = Table("id", "received", "times", "reason", "type", "envelope id", "detail")
        for row in quarantine.held(session, reason, limit):
            table.add_row(
                str(row.id),
                row.received_at.isoformat(timespec="seconds"),
                str(row.deliveries),
                row.reason,
                row.type or "",
                row.envelope_id or "",
                row.detail,
            )
        console = Console()
        console.print(table)
        console.print(status_queries.counts_by_reason(session))


@quarantine_app.command("show")
def quarantine_show(record_id: int) -> None:
    """One record: reason, detail and the body as received."""
    from models.db.machinery import QuarantinedMessage
    from workers.cli import quarantine
    from workers.cli.context import database

    with database(Settings()) as db, db.sessions() as session:
        row = session.get(QuarantinedMessage, record_id)
        if row is None:
            typer.echo(f"no quarantine record {record_id}", err=True)
            raise typer.Exit(1)
        typer.echo(
            json.dumps(
                {
                    "id": row.id,
                    "status": row.status,
                    "reason": row.reason,
                    "detail": row.detail,
                    "type": row.type,
                    "envelope_id": row.envelope_id,
                    "received_at": row.received_at.isoformat(),
                    "deliveries": row.deliveries,
                    "body": quarantine.preview(row.body),
                },
                indent=2,
                ensure_ascii=False,
            )
        )


@quarantine_app.command("replay")
def quarantine_replay(record_ids: list[int]) -> None:
    """Put records back on the ingress stream (after fixing what refused them)."""
    from workers.cli import quarantine
    from workers.cli.context import database, redis_connection
    from workers.runtime import utc_now

    settings = Settings()
    with (
        database(settings) as db,
        redis_connection(settings) as client,
        db.sessions() as session,
        session.begin(),
    ):
        count = quarantine.replay(session, client, record_ids, utc_now())
    typer.echo(f"replayed {count}")


@quarantine_app.command("drop")
def quarantine_drop(record_ids: list[int]) -> None:
    """Mark records dropped: kept for the record, never replayed."""
    from workers.cli import quarantine
    from workers.cli.context import database

    with database(Settings()) as db, db.sessions() as session, session.begin():
        count = quarantine.drop(session, record_ids)
    typer.echo(f"dropped {count}")


@order_app.command("show")
def order_show(
    number: str, as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False
) -> None:
    """An order's three statuses, deadline, lines, ledger and timeline."""
    from workers.cli.context import database
    from workers.cli.orders import order_details
    from workers.cli.views import print_order

    with database(Settings()) as db, db.sessions() as session:
        details = order_details(session, number)
    if details is None:
        typer.echo(f"no order {number}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(details, indent=2, ensure_ascii=False))
    else:
        print_order(Console(), details)


@export_app.command("orders")
def export_orders(fmt: Annotated[Format, typer.Option("--format")] = Format.CSV) -> None:
    """Every order with its statuses and balances, streamed to stdout."""
    from workers.cli.context import database
    from workers.cli.orders import ORDER_COLUMNS, iter_orders, write_rows

    with database(Settings()) as db, db.sessions() as session:
        write_rows(iter_orders(session), ORDER_COLUMNS, fmt.value, sys.stdout)


@export_app.command("payments")
def export_payments(fmt: Annotated[Format, typer.Option("--format")] = Format.CSV) -> None:
    """Every ledger entry (refunds negative), streamed to stdout."""
    from workers.cli.context import database
    from workers.cli.ledger import PAYMENT_COLUMNS, iter_payments
    from workers.cli.orders import write_rows

    with database(Settings()) as db, db.sessions() as session:
        write_rows(iter_payments(session), PAYMENT_COLUMNS, fmt.value, sys.stdout)


@export_app.command("notifications")
def export_notifications(fmt: Annotated[Format, typer.Option("--format")] = Format.CSV) -> None:
    """Every notification with its state, attempts and last error, streamed to stdout."""
    from workers.cli.context import database
    from workers.cli.ledger import NOTIFICATION_COLUMNS, iter_notifications
    from workers.cli.orders import write_rows

    with database(Settings()) as db, db.sessions() as session:
        write_rows(iter_notifications(session), NOTIFICATION_COLUMNS, fmt.value, sys.stdout)


@export_app.command("paid-backlog")
def export_paid_backlog(fmt: Annotated[Format, typer.Option("--format")] = Format.CSV) -> None:
    """Every paid backlog SKU (order, SKU, quantity, remaining, created) and the delivery notes
    that consumed it, streamed to stdout."""
    from workers.cli.backlog import PAID_BACKLOG_COLUMNS, iter_paid_backlog
    from workers.cli.context import database
    from workers.cli.orders import write_rows

    with database(Settings()) as db, db.sessions() as session:
        rows = iter_paid_backlog(session, fmt.value)
        write_rows(rows, PAID_BACKLOG_COLUMNS, fmt.value, sys.stdout)


@customer_app.command("show")
def customer_show(
    customer_id: str, as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False
) -> None:
    """A customer's balance per currency and their orders' balances."""
    from workers.cli.context import database
    from workers.cli.ledger import customer_details

    with database(Settings()) as db, db.sessions() as session:
        details = customer_details(session, customer_id)
    if details is None:
        typer.echo(f"no customer {customer_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(details, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{details['name']}[/] <{details['email']}>  ({details['id']})")
    balance = ", ".join(f"{amount} {cur}" for cur, amount in details["balance"].items())
    console.print(f"balance: {balance or 'nothing outstanding'}")
    table = Table("order", "currency", "outstanding", "payment")
    for order in details["orders"]:
        table.add_row(
            order["number"],
            order["currency"],
            str(order["outstanding_balance"]),
            order["payment_status"],
        )
    console.print(table)


@payments_app.command("record")
def payments_record(
    source: Annotated[str, typer.Argument(help="CSV: number,amount,method,at[,reference,note]")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show results, keep nothing.")] = False,
) -> None:
    """Record many manual payments in one pass, with a result per row."""
    from models.db.uow import UnitOfWork
    from workers.cli.bulk_payments import apply_rows, read_rows
    from workers.cli.context import database
    from workers.cli.publish import open_source
    from workers.queue.ingress import policy_from
    from workers.runtime import utc_now

    settings = Settings()
    with open_source(source) as lines:
        rows = read_rows(lines)
    with database(settings) as db, UnitOfWork(db, utc_now) as uow:
        results = apply_rows(uow, rows, policy_from(settings))
        if not dry_run:
            uow.commit()
    table = Table(
        "line",
        "order",
        "amount",
        "result",
        "reason",
        title="dry run: nothing kept" if dry_run else "payments",
    )
    for r in results:
        table.add_row(str(r.line), r.number, r.amount, r.result, r.reason)
    Console().print(table)
    if any(r.result == "refused" for r in results):
        raise typer.Exit(1)


backorders_app = typer.Typer(help="Backorders waiting for stock.", no_args_is_help=True)


@backorders_app.command("plan")
def backorders_plan(
    sku: str,
    quantity: Annotated[int, typer.Argument(min=1, help="Quantity that would be received.")],
    policy: Annotated[
        ReleasePolicy | None, typer.Option(help="Default: the configured one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Dry run: which backorders receiving QUANTITY of SKU would release (changes nothing)."""
    from workers.cli.backorders import preview
    from workers.cli.context import database

    settings = Settings()
    with database(settings) as db, db.sessions() as session:
        chosen = policy.value if policy else settings.backorder_policy
        result = preview(session, sku, quantity, chosen)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    table = Table(
        "backorder",
        "needs",
        "outcome",
        "why",
        title=f"receiving {quantity} x {sku} ({result['policy']})",
    )
    for row in result["decisions"]:
        needs = ", ".join(f"{q} x {s}" for s, q in row["lines"].items())
        table.add_row(row["number"], needs, row["outcome"], row["reason"])
    console = Console()
    console.print(table)
    console.print(f"{result['released']} released; {result['available_after']} {sku} left")
