"""Backorder rules without I/O: how an order splits by stock, and whom a restock releases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from models.domain.errors import PermanentError
from models.domain.orders import LineSpec

BACKORDER_SUFFIX = "-backorder"
RELEASED_REASON = "every line can be filled"


class ReleasePolicy(StrEnum):
    """Whether a younger backorder may be released past an older one that is blocked."""

    SKIP_BLOCKED = "skip_blocked"
    STRICT = "strict"


@dataclass(frozen=True)
class SplitPlan:
    """Lines that stay (stock reserved for them) and lines that move to the backorder."""

    keep: tuple[LineSpec, ...]
    move: tuple[LineSpec, ...]

    def reserve(self) -> dict[str, int]:
        """Stock to reserve for the kept lines, per SKU."""
        return needs(self.keep)


def needs(lines: Sequence[LineSpec]) -> dict[str, int]:
    """Quantity per SKU over `lines`."""
    total: dict[str, int] = {}
    for line in lines:
        total[line.sku] = total.get(line.sku, 0) + line.quantity
    return total


def plan_split(lines: Sequence[LineSpec], available: Mapping[str, int]) -> SplitPlan:
    """Split by stock, line by line; a line partly in stock is split by quantity.

    Out-of-stock inserts move with the out-of-stock goods (they are packed with them).
    Refused when nothing or only inserts are out of stock, or no goods are in stock.
    """
    left = dict(available)
    keep: list[LineSpec] = []
    move: list[LineSpec] = []
    for line in lines:
        take = max(0, min(line.quantity, left.get(line.sku, 0)))
        left[line.sku] = left.get(line.sku, 0) - take
        if take:
            keep.append(_with_quantity(line, take))
        if line.quantity > take:
            move.append(_with_quantity(line, line.quantity - take))
    if not move:
        raise PermanentError("nothing_out_of_stock", "every line is in stock: nothing to split")
    if all(line.is_insert for line in move):
        skus = ", ".join(sorted({line.sku for line in move}))
        raise PermanentError(
            "only_inserts_out_of_stock",
            f"only inserts are out of stock ({skus}); an order is not split for inserts",
        )
    if not any(not line.is_insert for line in keep):
        raise PermanentError("nothing_in_stock", "none of the goods are in stock: nothing to ship")
    return SplitPlan(tuple(keep), tuple(move))


def _with_quantity(line: LineSpec, quantity: int) -> LineSpec:
    return LineSpec(line.sku, quantity, line.unit_price, line.is_insert)


def backorder_number(number: str, taken: Sequence[str]) -> str:
    """`<root>-backorder`, then `-backorder-2`, ... when a backorder is split again."""
    root = number.split(BACKORDER_SUFFIX, 1)[0]
    candidate = f"{root}{BACKORDER_SUFFIX}"
    suffix = 2
    while candidate in taken:
        candidate = f"{root}{BACKORDER_SUFFIX}-{suffix}"
        suffix += 1
    return candidate


@dataclass(frozen=True)
class Waiting:
    """A backorder waiting for stock: what it needs, per SKU."""

    order_id: int
    number: str
    needs: Mapping[str, int]


@dataclass
class ReleasePlan:
    """What one restock releases, why it skips the rest, and the stock left."""

    released: list[Waiting] = field(default_factory=list)
    skipped: list[tuple[Waiting, str]] = field(default_factory=list)
    available_after: dict[str, int] = field(default_factory=dict)

    def decisions(self) -> list[tuple[Waiting, str, str]]:
        """(backorder, released|skipped, reason) for each one considered, oldest first."""
        released = {w.order_id for w in self.released}
        reasons = {w.order_id: why for w, why in self.skipped}
        considered = sorted(
            [*self.released, *(w for w, _ in self.skipped)], key=lambda w: self._rank[w.order_id]
        )
        return [
            (w, "released", RELEASED_REASON)
            if w.order_id in released
            else (w, "skipped", reasons[w.order_id])
            for w in considered
        ]

    _rank: dict[int, int] = field(default_factory=dict, repr=False)

    def reserved(self) -> dict[str, int]:
        """Stock reserved for the released backorders, per SKU."""
        total: dict[str, int] = {}
        for waiting in self.released:
            for sku, quantity in waiting.needs.items():
                total[sku] = total.get(sku, 0) + quantity
        return total


def plan_release(
    waiting: Sequence[Waiting], available: Mapping[str, int], policy: ReleasePolicy
) -> ReleasePlan:
    """Release `waiting` (oldest first) while every line of each can be filled.

    Strict stops at the first backorder that cannot be filled, so nobody jumps the queue;
    skip-blocked goes on to younger ones.
    """
    plan = ReleasePlan(
        available_after=dict(available), _rank={w.order_id: i for i, w in enumerate(waiting)}
    )
    left = plan.available_after
    blocker: Waiting | None = None
    for backorder in waiting:
        if blocker is not None:
            plan.skipped.append((backorder, f"strict: waits behind {blocker.number}"))
            continue
        short = _shortage(backorder, left)
        if short:
            plan.skipped.append((backorder, short))
            if policy is ReleasePolicy.STRICT:
                blocker = backorder
            continue
        for sku, quantity in backorder.needs.items():
            left[sku] = left.get(sku, 0) - quantity
        plan.released.append(backorder)
    return plan


def _shortage(backorder: Waiting, left: Mapping[str, int]) -> str:
    """Why it cannot be filled now ('' when it can)."""
    short = [
        f"{sku} needs {quantity}, {max(left.get(sku, 0), 0)} available"
        for sku, quantity in sorted(backorder.needs.items())
        if left.get(sku, 0) < quantity
    ]
    return "short: " + "; ".join(short) if short else ""
