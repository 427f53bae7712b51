"""Process-wide logging set-up."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """Plain line logs on stderr with the process id (several processes share a terminal)."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # dramatiq logs every requeue at INFO; keep the noise for debugging.
    logging.getLogger("dramatiq").setLevel(logging.WARNING)
    # The stripe package logs every request and response at INFO: two lines per call.
    logging.getLogger("stripe").setLevel(logging.WARNING)
