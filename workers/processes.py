"""Start and stop `orderflow worker` / `orderflow scheduler` as real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class OrderflowProcess:
    """A running orderflow command and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker supervisor and its children)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def log_text(self) -> str:
        """What it has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> OrderflowProcess:
    """Run `orderflow <args>` with `env`, in its own process group, logging to a file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "workers", *args],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return OrderflowProcess(name=name, popen=popen, log_path=log_path)


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ORDERFLOW_* settings replaced by `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(overrides)
    return env
