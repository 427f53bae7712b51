"""Crash points for chaos tests: a process dies (like SIGKILL) at a named dangerous moment.

Inert unless ORDERFLOW_CRASH_AT names the point (comma-separated). Each named point fires once
per data directory (a marker file records it), so the restarted process goes on normally.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "ORDERFLOW_CRASH_AT"
_EXIT_CODE = 137  # what a SIGKILLed process reports


def crash_point(name: str) -> None:
    """Die here, at once and without clean-up, if this point is armed and has not fired yet."""
    armed = os.environ.get(ENV)
    if not armed or name not in armed.split(","):
        return
    marker = Path(os.environ.get("ORDERFLOW_DATA_DIR", ".orderflow")) / f"crashed-{name}"
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with marker.open("x"):
            pass
    except FileExistsError:
        return
    os._exit(_EXIT_CODE)
