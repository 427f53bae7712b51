"""Atheris (coverage-guided, libFuzzer) harness for the ingress decoder: bytes go through `decode`
and `authenticate` as the ingress does; anything but a refusal with a known reason is a crash."""

# From the repository root (docs/fuzzing.md), e.g. for ten minutes:
#     uv run python -m tests.fuzz.atheris_decoder -max_total_time=600

from __future__ import annotations

import sys

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports(include=["tasks"]):
    from tasks.messages.catalogue import ReasonCode, RejectedMessage, decode
    from tasks.messages.signing import authenticate

# After them: these import more of `tasks`, which must not pre-empt the instrumentation.
from tests import factories as f
from tests.fuzz.seeds import libfuzzer_argv

MAX_BYTES = 64 * 1024
REASONS = frozenset(ReasonCode)


def test_one_input(data: bytes) -> None:
    """One input: a message or a refusal with a known reason and a detail, nothing else."""
    try:
        authenticate(decode(data, MAX_BYTES), f.KEYS)
    except RejectedMessage as refused:
        if refused.reason_code not in REASONS or not refused.detail:
            raise AssertionError(f"refusal without a known reason: {refused!r}") from None


def main() -> None:
    """Fuzz until libFuzzer's limits; without a corpus directory, from the golden samples."""
    atheris.Setup(libfuzzer_argv(sys.argv, "decoder"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
