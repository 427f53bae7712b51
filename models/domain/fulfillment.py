"""The fulfillment axis: every legal transition, written down in one place."""

from __future__ import annotations

from models.domain.errors import PermanentError
from models.domain.statuses import FulfillmentStatus as F

TRANSITIONS: dict[F, frozenset[F]] = {
    F.UNFULFILLED: frozenset({F.PROCESSING, F.ON_HOLD, F.BACKORDERED, F.SHIPPED, F.CANCELLED}),
    F.PROCESSING: frozenset({F.ON_HOLD, F.BACKORDERED, F.SHIPPED, F.FULFILLED, F.CANCELLED}),
    F.ON_HOLD: frozenset({F.UNFULFILLED, F.PROCESSING, F.BACKORDERED, F.CANCELLED}),
    F.BACKORDERED: frozenset({F.PROCESSING, F.ON_HOLD, F.CANCELLED}),
    F.SHIPPED: frozenset({F.FULFILLED}),
    F.FULFILLED: frozenset(),
    F.CANCELLED: frozenset(),
}


def check_transition(current: F, target: F) -> bool:
    """True when the status changes, False when it is already `target`; refuse illegal moves."""
    if current is target:
        return False
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing"
        raise PermanentError(
            "illegal_transition",
            f"fulfillment cannot go from {current.value} to {target.value} "
            f"(from {current.value}: {allowed})",
        )
    return True
