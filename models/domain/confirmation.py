"""The confirmation axis: forward-only transitions, so late or repeated messages never regress."""

from __future__ import annotations

from models.domain.statuses import ConfirmationStatus

_RANK = {
    ConfirmationStatus.NEW: 0,
    ConfirmationStatus.ACCEPTED: 1,
    ConfirmationStatus.CONFIRMED: 2,
}


def advance(current: ConfirmationStatus, reported: ConfirmationStatus) -> ConfirmationStatus:
    """The status after a report: it moves forward (skipping is fine) and never back.

    An `order.accepted` that arrives after `order.confirmed` is normal out-of-order delivery,
    not an error: the order stays confirmed.
    """
    return reported if _RANK[reported] > _RANK[current] else current
