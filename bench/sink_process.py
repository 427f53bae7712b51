"""The SMTP sink in a process of its own, for benchmarks: in the bench's process its parsing
competes with the bench for the GIL and caps the measured rate (about 70 mails/s here)."""

from __future__ import annotations

import subprocess
import sys
import threading
from types import TracebackType

_BOOT_TIMEOUT_S = 30.0


class SinkProcess:
    """`python -m workers.demo.smtp_sink` on a free port; counts the lines it prints per mail."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "workers.demo.smtp_sink", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline()  # "SMTP sink listening on 127.0.0.1:PORT"
        if "listening on" not in first:
            self._proc.kill()
            raise RuntimeError(f"SMTP sink did not start: {first!r}")
        self.url = "smtp://" + first.rsplit(" ", 1)[1].strip()
        self._count = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for _ in self._proc.stdout:
            with self._lock:
                self._count += 1

    def count(self) -> int:
        """Mails received so far."""
        with self._lock:
            return self._count

    def stop(self) -> None:
        """Stop the sink (its buffered lines are still counted)."""
        self._proc.terminate()
        self._proc.wait(_BOOT_TIMEOUT_S)
        self._reader.join(_BOOT_TIMEOUT_S)

    def __enter__(self) -> SinkProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
