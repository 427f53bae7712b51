"""The fulfillment transition table: legal moves pass, illegal ones are refused with a reason."""

from __future__ import annotations

import itertools

import pytest

from models.domain.errors import PermanentError
from models.domain.fulfillment import TRANSITIONS, check_transition
from models.domain.statuses import FulfillmentStatus as F


def test_every_status_has_a_row_and_final_states_are_final() -> None:
    assert set(TRANSITIONS) == set(F)
    assert TRANSITIONS[F.FULFILLED] == frozenset()
    assert TRANSITIONS[F.CANCELLED] == frozenset()


@pytest.mark.parametrize(("current", "target"), list(itertools.product(F, F)))
def test_each_pair_is_allowed_exactly_when_the_table_says(current: F, target: F) -> None:
    if current is target:
        assert check_transition(current, target) is False
    elif target in TRANSITIONS[current]:
        assert check_transition(current, target) is True
    else:
        with pytest.raises(PermanentError) as refused:
            check_transition(current, target)
        assert refused.value.reason == "illegal_transition"
        assert f"from {current.value} to {target.value}" in refused.value.detail


def test_a_cancelled_order_cannot_be_reopened() -> None:
    with pytest.raises(PermanentError, match="cancelled to processing"):
        check_transition(F.CANCELLED, F.PROCESSING)
