"""The backorder rules: splitting by stock and the restock allocation (property tests)."""

from __future__ import annotations

from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.domain.backorders import (
    ReleasePolicy,
    Waiting,
    backorder_number,
    needs,
    plan_release,
    plan_split,
)
from models.domain.errors import PermanentError
from models.domain.orders import LineSpec

DRILL, BITS, LEAFLET = "DRILL", "BITS", "LEAFLET"


def line(sku: str, quantity: int, *, insert: bool = False) -> LineSpec:
    return LineSpec(sku, quantity, 100, insert)


def test_a_line_partly_in_stock_is_split_by_quantity() -> None:
    # Given 3 drills on hand for a line of 5, and bits fully in stock
    plan = plan_split([line(DRILL, 5), line(BITS, 2)], {DRILL: 3, BITS: 10})
    # Then 3 drills and the bits stay, 2 drills move
    assert plan.keep == (line(DRILL, 3), line(BITS, 2))
    assert plan.move == (line(DRILL, 2),)
    assert plan.reserve() == {DRILL: 3, BITS: 2}


def test_out_of_stock_inserts_move_with_out_of_stock_goods() -> None:
    plan = plan_split([line(DRILL, 1), line(BITS, 1), line(LEAFLET, 1, insert=True)],
                      {DRILL: 1})  # fmt: skip
    assert plan.keep == (line(DRILL, 1),)
    assert plan.move == (line(BITS, 1), line(LEAFLET, 1, insert=True))


@pytest.mark.parametrize(
    ("lines", "stock", "reason"),
    [
        ([line(DRILL, 1), line(LEAFLET, 1, insert=True)], {DRILL: 1}, "only_inserts_out_of_stock"),
        ([line(DRILL, 2)], {DRILL: 2}, "nothing_out_of_stock"),
        ([line(DRILL, 2), line(BITS, 1)], {}, "nothing_in_stock"),
        # Only inserts in stock: the goods would all wait, so there is nothing to ship now.
        ([line(DRILL, 2), line(LEAFLET, 1, insert=True)], {LEAFLET: 5}, "nothing_in_stock"),
    ],
)
def test_split_refusals(lines: list[LineSpec], stock: dict[str, int], reason: str) -> None:
    with pytest.raises(PermanentError) as refused:
        plan_split(lines, stock)
    assert refused.value.reason == reason


def test_backorder_numbers_count_up_when_a_backorder_is_split_again() -> None:
    assert backorder_number("M1", []) == "M1-backorder"
    assert backorder_number("M1-backorder", ["M1-backorder"]) == "M1-backorder-2"
    assert backorder_number("M1-backorder-2", ["M1-backorder", "M1-backorder-2"]) == (
        "M1-backorder-3"
    )


SKUS = st.sampled_from(["A", "B", "C"])
LINES = st.lists(
    st.builds(LineSpec, SKUS, st.integers(1, 5), st.just(100), st.booleans()),
    min_size=1,
    max_size=6,
)
STOCK = st.dictionaries(SKUS, st.integers(0, 12))


@given(LINES, STOCK)
def test_a_split_keeps_every_quantity_and_never_keeps_more_than_is_free(
    lines: list[LineSpec], stock: dict[str, int]
) -> None:
    try:
        plan = plan_split(lines, stock)
    except PermanentError:
        return
    kept, moved, wanted = needs(plan.keep), needs(plan.move), needs(lines)
    for sku, quantity in wanted.items():
        assert kept.get(sku, 0) + moved.get(sku, 0) == quantity
        assert kept.get(sku, 0) <= stock.get(sku, 0)
    assert any(not x.is_insert for x in plan.move)
    assert any(not x.is_insert for x in plan.keep)


WAITING = st.lists(
    st.dictionaries(SKUS, st.integers(1, 6), min_size=1, max_size=3), max_size=25
).map(lambda all_needs: [Waiting(i, f"M{i}-backorder", n) for i, n in enumerate(all_needs)])
POLICIES = st.sampled_from(list(ReleasePolicy))


def _fits(released: list[Waiting], stock: dict[str, int]) -> bool:
    return all(sum(w.needs.get(sku, 0) for w in released) <= stock.get(sku, 0) for sku in "ABC")


def _expected(waiting: list[Waiting], stock: dict[str, int], policy: ReleasePolicy) -> list[int]:
    """The policy written a second, independent way."""
    if policy is ReleasePolicy.STRICT:
        # The longest prefix (oldest first) that fits as a whole.
        prefixes = list(accumulate(([w] for w in waiting), initial=[]))
        best = max((p for p in prefixes if _fits(p, stock)), key=len)
        return [w.order_id for w in best]
    taken: list[Waiting] = []
    for candidate in waiting:
        if _fits([*taken, candidate], stock):
            taken.append(candidate)
    return [w.order_id for w in taken]


@given(WAITING, STOCK, POLICIES)
def test_release_follows_the_policy_and_never_overdraws(
    waiting: list[Waiting], stock: dict[str, int], policy: ReleasePolicy
) -> None:
    plan = plan_release(waiting, stock, policy)
    released = [w.order_id for w in plan.released]
    # The released set is exactly what the policy says, oldest first.
    assert released == _expected(waiting, stock, policy)
    # Every backorder is decided once: released or skipped with a reason, never both.
    skipped = [w.order_id for w, _ in plan.skipped]
    assert sorted(released + skipped) == [w.order_id for w in waiting]
    assert all(reason for _, reason in plan.skipped)
    assert [w.order_id for w, _, _ in plan.decisions()] == [w.order_id for w in waiting]
    # Stock never goes negative, and what is left is exactly what was not reserved.
    reserved = plan.reserved()
    for sku in "ABC":
        left = stock.get(sku, 0) - reserved.get(sku, 0)
        assert left >= 0
        assert plan.available_after.get(sku, 0) == left


def test_strict_stops_at_the_oldest_blocked_backorder() -> None:
    waiting = [Waiting(1, "M1-backorder", {"A": 5}), Waiting(2, "M2-backorder", {"A": 1})]
    strict = plan_release(waiting, {"A": 3}, ReleasePolicy.STRICT)
    assert strict.released == []
    assert [(w.number, why) for w, why in strict.skipped] == [
        ("M1-backorder", "short: A needs 5, 3 available"),
        ("M2-backorder", "strict: waits behind M1-backorder"),
    ]
    skipping = plan_release(waiting, {"A": 3}, ReleasePolicy.SKIP_BLOCKED)
    assert [w.number for w in skipping.released] == ["M2-backorder"]
    assert skipping.available_after == {"A": 2}
