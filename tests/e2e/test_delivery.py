"""Outbox-driven jobs through real worker and scheduler processes: kills, restarts, SIGTERM."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tasks.outbox.jobs import PROBE_JOB
from tests.e2e.conftest import Stack
from tests.support import probe_counts, wait_until

pytestmark = pytest.mark.e2e
JOBS = 500


def _stage_probes(stack: Stack, count: int, work_ms: int) -> None:
    with stack.rt.new_uow() as uow:
        for index in range(count):
            uow.stage(PROBE_JOB, f"probe:{index}", {"key": f"p{index}", "work_ms": work_ms})
        uow.commit()


def _done(stack: Stack) -> int:
    return probe_counts(stack.rt.db)[0]


def test_a_sigkilled_worker_loses_and_duplicates_nothing(stack: Stack) -> None:
    # Given a worker and a scheduler busy with 500 jobs
    stack.start("scheduler", "scheduler")
    first = stack.worker("worker-1")
    _stage_probes(stack, JOBS, work_ms=20)
    assert wait_until(lambda: _done(stack) >= 100, 60)
    # When the worker is killed mid-batch and a fresh one started
    first.kill()
    done_at_kill = _done(stack)
    restarted = time.monotonic()
    stack.worker("worker-2")
    # Then all 500 effects happen once each within 30 s of the restart
    finished = wait_until(lambda: _done(stack) == JOBS, 30)
    elapsed = time.monotonic() - restarted
    print(f"killed at done={done_at_kill}; all {JOBS} done {elapsed:.1f}s after restart")
    assert 100 <= done_at_kill < JOBS
    assert finished, f"done={_done(stack)} after {elapsed:.1f}s"
    assert probe_counts(stack.rt.db) == (JOBS, JOBS, JOBS)


@pytest.mark.parametrize("stack", [{"outbox_redeliver_after_s": 3}], indirect=True)
def test_jobs_lost_by_a_redis_restart_are_re_driven_from_the_database(
    stack: Stack, redis_server: object
) -> None:
    # Given 500 jobs queued in Redis and no worker yet
    _stage_probes(stack, JOBS, work_ms=0)
    # When Redis restarts without persistence, losing them all
    redis_server.restart()  # type: ignore[attr-defined]
    stack.start("scheduler", "scheduler")
    stack.worker()
    # Then the reconciler re-drives every job and each effect happens once
    assert wait_until(lambda: _done(stack) == JOBS, 90), f"done={_done(stack)}"
    assert probe_counts(stack.rt.db) == (JOBS, JOBS, JOBS)


def test_sigterm_stops_a_worker_cleanly_and_its_messages_go_to_the_next(stack: Stack) -> None:
    # Given a busy worker and no scheduler (so no reconciler can cover for lost messages)
    worker = stack.worker("worker-1")
    _stage_probes(stack, 300, work_ms=20)
    assert wait_until(lambda: _done(stack) >= 50, 60)
    # When it is told to stop
    code = worker.terminate(timeout=60)
    done_at_stop = _done(stack)
    # Then it exits 0 and a fresh worker finishes the rest, exactly once
    assert code == 0, worker.log_text()
    assert done_at_stop < 300
    stack.worker("worker-2")
    assert wait_until(lambda: _done(stack) == 300, 30), f"done={_done(stack)}"
    assert probe_counts(stack.rt.db) == (300, 300, 300)


def _workers(supervisor_pid: int) -> list[psutil.Process]:
    # Only spawned workers: multiprocessing may also start a resource tracker child.
    children = psutil.Process(supervisor_pid).children()
    return [p for p in children if "spawn_main" in " ".join(p.cmdline())]


def test_the_supervisor_restarts_a_worker_process_that_dies(stack: Stack) -> None:
    # Given a supervisor with two worker processes
    supervisor = stack.worker(processes_=2)
    children = _workers(supervisor.pid)
    assert len(children) == 2
    # When one is SIGKILLed
    children[0].send_signal(signal.SIGKILL)
    # Then a replacement starts and work still gets done
    assert wait_until(lambda: supervisor.log_text().count(" ready: ") >= 3, 60)
    alive = {p.pid for p in _workers(supervisor.pid) if p.is_running()}
    assert len(alive) == 2
    assert children[0].pid not in alive
    _stage_probes(stack, 50, work_ms=0)
    assert wait_until(lambda: _done(stack) == 50, 30)
    assert probe_counts(stack.rt.db) == (50, 50, 50)


def test_the_scheduler_stops_cleanly_on_sigterm(stack: Stack) -> None:
    scheduler = stack.start("scheduler", "scheduler")
    assert wait_until(lambda: "scheduler started" in scheduler.log_text(), 60)
    assert scheduler.terminate(timeout=30) == 0
    assert "scheduler stopped" in scheduler.log_text()
