"""How long the fuzzers run: short by default, so the whole directory takes about a minute in CI;
`ORDERFLOW_FUZZ_EXAMPLES` / `ORDERFLOW_FUZZ_SECONDS` make them run longer (docs/fuzzing.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "ORDERFLOW_FUZZ_EXAMPLES"
SECONDS_ENV = "ORDERFLOW_FUZZ_SECONDS"
# One call of the code under test (decode, verify, ingest of a batch, a webhook request) must
# finish within this: our inputs are small, so a slower call is a hang or a quadratic path.
CALL_LIMIT_S = 2.0


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return value


def fuzz(examples: int, *, suppress: Sequence[HealthCheck] = ()) -> settings:
    """Hypothesis settings: `examples` by default (ORDERFLOW_FUZZ_EXAMPLES overrides it), and a
    deadline per example well above what a quiet machine needs, far below a hang."""
    return settings(
        max_examples=_positive(EXAMPLES_ENV, examples),
        deadline=timedelta(seconds=CALL_LIMIT_S * 2),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, *suppress],
        print_blob=True,  # a failure in CI prints what reproduces it
    )


def atheris_seconds(default: int) -> int:
    """How long each atheris harness runs (ORDERFLOW_FUZZ_SECONDS overrides `default`)."""
    return _positive(SECONDS_ENV, default)
