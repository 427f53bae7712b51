"""The deployment templates in docs/deploy/: every systemd unit runs orderflow as a non-root user
with its settings from an environment file and restarts on failure; the Procfile names the
three long-running processes."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
UNITS = {"orderflow-worker.service": "worker", "orderflow-scheduler.service": "scheduler",
         "orderflow-webhooks.service": "webhooks"}  # fmt: skip


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("name", list(UNITS))
def test_each_unit_runs_its_command_unprivileged_from_an_environment_file(name: str) -> None:
    # Given the unit
    service = _unit(name)["Service"]
    # Then it runs `orderflow <command>` as the orderflow user, with settings from the file
    assert service["ExecStart"] == f"/opt/orderflow/.venv/bin/orderflow {UNITS[name]}"
    assert (service["User"], service["Group"]) == ("orderflow", "orderflow")
    assert service["EnvironmentFile"] == "/etc/orderflow/orderflow.env"
    # And it is restarted when it dies, stopped with SIGTERM and given time to finish
    assert (service["Restart"], service["KillSignal"]) == ("always", "SIGTERM")
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["NoNewPrivileges"] == "yes"


def test_the_worker_unit_leaves_stopping_its_processes_to_the_supervisor() -> None:
    # 30 s for in-flight jobs (workers/supervisor.py STOP_TIMEOUT_MS), then a margin
    service = _unit("orderflow-worker.service")["Service"]
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > 35


def test_the_procfile_names_the_three_long_running_processes() -> None:
    lines = (DEPLOY / "Procfile").read_text(encoding="utf-8").splitlines()
    entries = dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))
    assert entries == {"worker": "orderflow worker", "scheduler": "orderflow scheduler",
                       "webhooks": "orderflow webhooks"}  # fmt: skip
