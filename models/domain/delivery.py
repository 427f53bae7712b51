"""Delivery notes: which backlog SKUs a note consumes (paid first) and what it bills.

Paid backlog was paid in advance, so delivering it bills nothing; regular backlog bills its
quantity at its unit price. A note never takes more than the backlog holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from models.domain.errors import PermanentError
from models.domain.statuses import BacklogKind


@dataclass(frozen=True)
class BacklogPiece:
    """One backlog SKU row as the rule sees it."""

    id: int
    sku: str
    kind: BacklogKind
    remaining: int
    unit_price: int


@dataclass(frozen=True)
class Take:
    """What a note takes from one backlog SKU."""

    backlog_id: int
    sku: str
    kind: BacklogKind
    quantity: int
    billable: bool
    amount: int  # to invoice, minor units; 0 for paid backlog


def _order_of_use(pieces: Iterable[BacklogPiece], sku: str) -> list[BacklogPiece]:
    """Paid before regular, older (lower id) first within a kind."""
    open_ = [p for p in pieces if p.sku == sku and p.remaining > 0]
    return sorted(open_, key=lambda p: (p.kind is not BacklogKind.PAID, p.id))


def _takes_for(sku: str, wanted: int, pieces: list[BacklogPiece]) -> list[Take]:
    takes, left = [], wanted
    for piece in pieces:
        if left == 0:
            break
        quantity = min(left, piece.remaining)
        billable = piece.kind is BacklogKind.REGULAR
        amount = quantity * piece.unit_price if billable else 0
        takes.append(Take(piece.id, sku, piece.kind, quantity, billable, amount))
        left -= quantity
    return takes


def plan_delivery(requested: Mapping[str, int], pieces: Sequence[BacklogPiece]) -> list[Take]:
    """The takes for a note delivering `requested` (SKU -> quantity), or a refusal naming every
    SKU the backlog cannot cover (`exceeds_backlog`)."""
    takes: list[Take] = []
    short: list[str] = []
    for sku, wanted in requested.items():
        usable = _order_of_use(pieces, sku)
        available = sum(p.remaining for p in usable)
        if wanted > available:
            short.append(f"{sku}: {wanted} asked, {available} in backlog")
            continue
        takes += _takes_for(sku, wanted, usable)
    if short:
        raise PermanentError("exceeds_backlog", "; ".join(short))
    return takes


def billed(takes: Iterable[Take]) -> int:
    """The amount a note gives to invoice."""
    return sum(take.amount for take in takes)
