"""Rich renderings shared by the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_order(console: Console, details: dict[str, Any]) -> None:
    """An order as a person reads it."""
    console.print(f"[bold]Order {details['number']}[/]  {details['currency']} {details['total']}")
    console.print(
        f"confirmation: {details['confirmation_status']}"
        f" (due {details['confirmation_deadline']}, breached: {_breach(details)})"
        f"   fulfillment: {details['fulfillment_status']}"
        f"   payment: {details['payment_status']}"
    )
    console.print(
        f"invoiced {details['invoiced']}  paid {details['paid']}"
        f"  outstanding {details['outstanding_balance']}"
    )
    if details.get("capture_failure"):
        console.print(f"[bold red]capture failed[/]: {details['capture_failure']}")
    lines = Table("sku", "qty", "unit price", "insert", title="lines")
    for line in details["lines"]:
        lines.add_row(
            line["sku"],
            str(line["quantity"]),
            str(line["unit_price"]),
            "yes" if line["is_insert"] else "",
        )
    console.print(lines)
    sent = Table("kind", "to", "status", "attempts", "last error", title="notifications")
    for note in details["notifications"]:
        sent.add_row(
            note["kind"],
            _recipient(note),
            note["status"],
            str(note["attempts"]),
            note["last_error"] or "",
        )
    console.print(sent)
    if details.get("restock_decisions"):
        restocks = Table(
            "restock", "sku", "received", "at", "outcome", "why", title="restock decisions"
        )
        for row in details["restock_decisions"]:
            restocks.add_row(
                str(row["restock_id"]),
                row["sku"],
                str(row["received"]),
                row["at"],
                row["outcome"],
                row["reason"],
            )
        console.print(restocks)
    events = Table("at", "event", "summary", title="timeline")
    for event in details["timeline"]:
        events.add_row(event["at"], event["kind"], event["summary"])
    console.print(events)


def _breach(details: dict[str, Any]) -> str:
    if details["deadline_breached"] and details.get("deadline_breached_at"):
        return f"yes, found {details['deadline_breached_at']}"
    return "yes" if details["deadline_breached"] else "no"


def _recipient(note: dict[str, Any]) -> str:
    channel = note.get("channel", "email")
    return str(note["recipient"]) if channel == "email" else f"{channel}: {note['recipient']}"
