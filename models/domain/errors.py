"""The error tree every layer speaks: permanent failures are recorded, retryable ones retried."""

from __future__ import annotations


class OrderflowError(Exception):
    """Base of orderflow's own errors; `reason` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class PermanentError(OrderflowError):
    """Never retried: unknown order, declined card, contract violation."""


class RetryableError(OrderflowError):
    """Worth trying again: network, 5xx, rate limit, lock timeout."""


class UnclearOutcome(RetryableError):  # noqa: N818 - the name the capture work builds on
    """An external call whose effect may or may not have happened (timeout, reset, 5xx, 409,
    429): read the real state before acting again, then retry with the same idempotency key."""
