"""Fault injection (a seeded schedule plus one-off injections) and the idempotency-key store
of the local Stripe fake."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from tests.fakes.stripe_model import FakeClock


class FaultKind(StrEnum):
    SERVER_ERROR_BEFORE = "500_before"  # 500, nothing happened, nothing stored under the key
    SERVER_ERROR_AFTER = "500_after"  # the effect happened, then a 500 stored under the key
    RATE_LIMIT_RETRY = "429_retry"  # 429 with Stripe-Should-Retry: true
    RATE_LIMIT_NO_RETRY = "429_no_retry"  # 429 with Stripe-Should-Retry: false
    TIMEOUT_AFTER = "timeout_after"  # effect happened, answer delayed past the client timeout
    RESET_BEFORE = "reset_before"  # connection reset, nothing happened
    RESET_AFTER = "reset_after"  # effect happened, then connection reset
    SLOW = "slow"  # delayed, then the correct answer (the key stays in flight meanwhile)


BEFORE_EFFECT = frozenset(
    {
        FaultKind.SERVER_ERROR_BEFORE,
        FaultKind.RATE_LIMIT_RETRY,
        FaultKind.RATE_LIMIT_NO_RETRY,
        FaultKind.RESET_BEFORE,
    }
)


class FaultPlan:
    """Draws a fault (or none) for each eligible request from a seeded generator, so the same
    seed and the same request order give the same faults."""

    def __init__(
        self,
        seed: int,
        rate: float,
        kinds: Iterable[FaultKind | str] = tuple(FaultKind),
        *,
        reads_too: bool = False,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        self.kinds = tuple(FaultKind(k) for k in kinds)
        if rate > 0 and not self.kinds:
            raise ValueError("a positive rate needs at least one fault kind")
        self.seed = seed
        self.rate = rate
        self.reads_too = reads_too
        self._rng = random.Random(seed)

    def draw(self) -> FaultKind | None:
        if self.rate == 0.0 or self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.kinds)


class FiredFault(NamedTuple):
    kind: FaultKind
    method: str
    path: str


@dataclass
class _OneOff:
    pattern: re.Pattern[str]
    kind: FaultKind
    method: str


class Faults:
    """What the server consults before each request; `fired` records what it injected."""

    def __init__(
        self, plan: FaultPlan, *, timeout_delay: float = 2.0, slow_delay: float = 0.5
    ) -> None:
        self.plan = plan
        self.timeout_delay = timeout_delay
        self.slow_delay = slow_delay
        self._one_offs: list[_OneOff] = []
        self._fired: list[FiredFault] = []
        self._lock = threading.Lock()

    def inject_next(self, path_regex: str, kind: FaultKind | str, method: str = "POST") -> None:
        """The next request whose path matches `path_regex` (re.search) gets `kind`."""
        with self._lock:
            self._one_offs.append(_OneOff(re.compile(path_regex), FaultKind(kind), method.upper()))

    def choose(self, method: str, path: str, *, mutating: bool) -> FaultKind | None:
        with self._lock:
            kind = self._take_one_off(method, path)
            if kind is None and (mutating or self.plan.reads_too):
                kind = self.plan.draw()
            if kind is not None:
                self._fired.append(FiredFault(kind, method, path))
            return kind

    def _take_one_off(self, method: str, path: str) -> FaultKind | None:
        for i, one_off in enumerate(self._one_offs):
            if one_off.method == method and one_off.pattern.search(path):
                del self._one_offs[i]
                return one_off.kind
        return None

    @property
    def fired(self) -> list[FiredFault]:
        with self._lock:
            return list(self._fired)


class StoredResponse(NamedTuple):
    status: int
    body: bytes
    request_id: str


@dataclass
class _KeyEntry:
    path: str
    fingerprint: tuple[tuple[str, str], ...]
    created_at: int
    response: StoredResponse | None = None  # None while the first request is in flight


class KeyCheck(NamedTuple):
    outcome: str  # new | replay | mismatch | in_flight
    response: StoredResponse | None = None


_PRUNE_EVERY_S = 1.0  # of the fake clock: keys age out at most this late


class IdempotencyStore:
    """Stripe's rules: the first response is kept and replayed for the same key and request;
    another request under the key is refused; keys older than `ttl_seconds` are forgotten."""

    def __init__(self, clock: FakeClock, ttl_seconds: int = 24 * 3600) -> None:
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, _KeyEntry] = {}
        self._lock = threading.Lock()
        self._next_prune = float("-inf")

    def begin(self, key: str, path: str, fingerprint: tuple[tuple[str, str], ...]) -> KeyCheck:
        with self._lock:
            self._prune()
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _KeyEntry(path, fingerprint, self.clock.now())
                return KeyCheck("new")
            if entry.response is None:
                return KeyCheck("in_flight")
            if (entry.path, entry.fingerprint) != (path, fingerprint):
                return KeyCheck("mismatch")
            return KeyCheck("replay", entry.response)

    def finish(self, key: str, response: StoredResponse | None) -> None:
        """Store the response, or forget the key when nothing is to be kept (validation)."""
        with self._lock:
            if response is None:
                self._entries.pop(key, None)
            else:
                self._entries[key].response = response

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._entries)

    def _prune(self) -> None:
        now = self.clock.now()
        if now < self._next_prune:
            return  # a walk over every key per request cost more than the request
        self._next_prune = now + _PRUNE_EVERY_S
        cutoff = now - self.ttl_seconds
        stale = [
            k for k, e in self._entries.items() if e.response is not None and e.created_at <= cutoff
        ]
        for key in stale:
            del self._entries[key]
