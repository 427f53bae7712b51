"""What the scheduler needs of the process it runs in: a Protocol, so that scheduler/ imports
nothing of workers/ (workers/runtime.py's Runtime is the one that satisfies it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import redis

from models.db.uow import StagedJob, UnitOfWork


class ClockSettings(Protocol):
    """The settings the periodic jobs read."""

    @property
    def outbox_redeliver_after_s(self) -> float: ...

    @property
    def hold_warning_h(self) -> float: ...

    @property
    def scheduler_tick_s(self) -> float: ...

    @property
    def deadline_scan_per_tick(self) -> int: ...

    @property
    def deadline_scan_batch(self) -> int: ...

    @property
    def desk_email(self) -> str: ...


class SchedulerHost(Protocol):
    """A connected process: units of work, the clock, the broker and the settings."""

    @property
    def settings(self) -> ClockSettings: ...

    @property
    def redis_client(self) -> redis.Redis:
        """Where the scheduler's heartbeats go."""
        ...

    def new_uow(self) -> UnitOfWork:
        """A unit of work that publishes what it staged after commit."""
        ...

    def clock(self) -> datetime:
        """Now, aware UTC."""
        ...

    def publish(self, staged: Sequence[StagedJob]) -> None:
        """Send committed outbox jobs to their queues."""
        ...
