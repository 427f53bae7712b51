"""Runs each atheris harness as a subprocess for a short time: exit 0, no crash files. atheris has
wheels only for CPython 3.11-3.13 on Linux x86_64: where `import atheris` fails these tests skip
(only then, in CI too); the hypothesis fuzzers run everywhere. ORDERFLOW_FUZZ_SECONDS: time each."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.budget import atheris_seconds
from tests.fuzz.seeds import prepare

pytest.importorskip("atheris", reason="atheris has no wheel for this Python or platform")

REPO = Path(__file__).resolve().parents[2]
SECONDS = atheris_seconds(15)
MIN_RUNS = 1_000  # far below what even a loaded machine does in SECONDS: proof it fuzzed


@pytest.mark.timeout(SECONDS + 180)
@pytest.mark.parametrize("harness", ["decoder", "signature"])
def test_the_atheris_harness_runs_its_time_without_a_crash(harness: str, tmp_path: Path) -> None:
    # Given a corpus seeded with signed samples, a token dictionary and an empty artifact folder
    corpus, dictionary = prepare(harness, tmp_path)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    # When the harness fuzzes for SECONDS (one input may take at most 10 s)
    done = subprocess.run(
        [sys.executable, "-m", f"tests.fuzz.atheris_{harness}", f"-max_total_time={SECONDS}",
         "-timeout=10", "-rss_limit_mb=2048", f"-dict={dictionary}",
         f"-artifact_prefix={artifacts}/", str(corpus)],
        cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 120, check=False,
    )  # fmt: skip
    # Then it ended by its time limit, having run many inputs, and found nothing
    runs = re.search(r"^Done (\d+) runs in \d+ second", done.stderr, re.MULTILINE)
    assert (done.returncode, sorted(p.name for p in artifacts.iterdir())) == (0, []), done.stderr[
        -4000:
    ]
    assert runs is not None
    assert int(runs.group(1)) >= MIN_RUNS
